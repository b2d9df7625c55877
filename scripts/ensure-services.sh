#!/usr/bin/env bash
# Makes sure the local RabbitMQ and PostgreSQL answer, starting them where they are installed.
# A broker named by AMQP_URL on another host is left alone.
set -uo pipefail

answers() { (exec 3<>"/dev/tcp/$1/$2") 2>/dev/null; }

wait_for() {  # host port name seconds
    local deadline=$((SECONDS + $4))
    until answers "$1" "$2"; do
        if (( SECONDS > deadline )); then echo "services: $3 did not come up on $1:$2" >&2; return 1; fi
        sleep 1
    done
    echo "services: $3 answers on $1:$2" >&2
}

if ! answers 127.0.0.1 5672; then
    if command -v rabbitmq-server >/dev/null 2>&1; then
        echo "services: starting RabbitMQ" >&2
        rabbitmq-server -detached >/dev/null 2>&1 || true
        wait_for 127.0.0.1 5672 RabbitMQ 90 || exit 1
        command -v rabbitmqctl >/dev/null && rabbitmqctl await_startup >/dev/null 2>&1 || true
    else
        echo "services: no RabbitMQ on 127.0.0.1:5672 and none installed here;" \
             "tests will use AMQP_URL or testcontainers" >&2
    fi
else
    echo "services: RabbitMQ answers on 127.0.0.1:5672" >&2
fi

if ! answers 127.0.0.1 5432; then
    if command -v pg_ctlcluster >/dev/null 2>&1 && [ -d /etc/postgresql ]; then
        echo "services: starting PostgreSQL" >&2
        pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -n1)" main start || true
        wait_for 127.0.0.1 5432 PostgreSQL 60 || exit 1
    else
        echo "services: no PostgreSQL on 127.0.0.1:5432 and none installed here" >&2
    fi
else
    echo "services: PostgreSQL answers on 127.0.0.1:5432" >&2
fi
exit 0
