{{- define "merch-pipeline.name" -}}
{{- .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "merch-pipeline.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "merch-pipeline.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
app.kubernetes.io/name: {{ include "merch-pipeline.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end -}}

{{- define "merch-pipeline.selectorLabels" -}}
app.kubernetes.io/name: {{ include "merch-pipeline.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "merch-pipeline.secretName" -}}
{{- default (include "merch-pipeline.fullname" .) .Values.secrets.existingSecret -}}
{{- end -}}

{{- define "merch-pipeline.hasShops" -}}
{{- if or .Values.secrets.shopsToml (and .Values.secrets.existingSecret .Values.secrets.existingSecretHasShops) -}}true{{- end -}}
{{- end -}}
