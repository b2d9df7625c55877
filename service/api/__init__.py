"""The Litestar app beside the consumers: health probes now, the operator's admin API later."""
