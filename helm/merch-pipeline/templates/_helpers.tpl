{{- define "merch-pipeline.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "merch-pipeline.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else if contains (include "merch-pipeline.name" .) .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name (include "merch-pipeline.name" .) | trunc 63 | trimSuffix "-" -}}
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

{{- define "merch-pipeline.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "merch-pipeline.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{/* extraEnvVars and extraEnvVarsSecret: after the chart's own (env, envFrom). */}}
{{- define "merch-pipeline.extraEnv" -}}
{{- range .Values.extraEnvVars }}
{{- if has .name (list "FAILPOINTS" "MERCH_PIPELINE_TEST_MODE") }}
{{- fail (printf "extraEnvVars may not set %s: failpoints are a crash-test tool, left out of the image" .name) }}
{{- end }}
{{ toYaml (list .) }}
{{- end }}
{{- end -}}

{{- define "merch-pipeline.image" -}}
{{ .Values.image.repository }}:{{ .Values.image.tag | default .Chart.AppVersion }}
{{- end -}}

{{- define "merch-pipeline.hasShops" -}}
{{- if or .Values.secrets.shopsToml (and .Values.secrets.existingSecret .Values.secrets.existingSecretHasShops) -}}true{{- end -}}
{{- end -}}

{{/* SQLite is one pod's file: it cannot be shared, so it allows one consumer pod. */}}
{{- define "merch-pipeline.usesSqlite" -}}
{{- if and (not .Values.secrets.existingSecret) (hasPrefix "sqlite" .Values.secrets.databaseUrl) -}}true{{- end -}}
{{- end -}}

{{/* Where a SQLite ledger must live: on the persistence volume. */}}
{{- define "merch-pipeline.ledgerDir" -}}/var/lib/merch-pipeline{{- end -}}

{{- define "merch-pipeline.guardRails" -}}
{{- if include "merch-pipeline.usesSqlite" . -}}
{{- $dir := include "merch-pipeline.ledgerDir" . -}}
{{- if or (not .Values.persistence.enabled) (not (hasPrefix (printf "sqlite:///%s/" $dir) .Values.secrets.databaseUrl)) -}}
{{- fail (printf "secrets.databaseUrl is SQLite %s with persistence.enabled=%v: designs waiting for their shop's quota are parked in the ledger, and a SQLite file outside the persistence volume (%s) is lost with the pod, parked designs with it. Put the file under %s with persistence.enabled=true, or use PostgreSQL." .Values.secrets.databaseUrl .Values.persistence.enabled $dir $dir) -}}
{{- end -}}
{{- range $role, $spec := (include "merch-pipeline.roles" . | fromYaml) -}}
{{- if gt (int $spec.replicas) 1 -}}
{{- fail (printf "roles.%s.replicas is %d but secrets.databaseUrl is SQLite: SQLite is a file inside one pod and cannot be shared between pods, so every replica would keep its own ledger and quota (duplicate products, 429s). Use a PostgreSQL databaseUrl for more than one replica." $role (int $spec.replicas)) -}}
{{- end -}}
{{- end -}}
{{- if or .Values.keda.enabled .Values.autoscaling.enabled -}}
{{- fail "keda.enabled / autoscaling.enabled would run several replicas, but secrets.databaseUrl is SQLite, which cannot be shared between pods. Use a PostgreSQL databaseUrl." -}}
{{- end -}}
{{- end -}}
{{- if and .Values.prometheusRule.enabled (not .Values.serviceMonitor.enabled) -}}
{{- fail "prometheusRule.enabled needs serviceMonitor.enabled: the alerts select the service's metrics by the job label the ServiceMonitor gives them." -}}
{{- end -}}
{{- if and .Values.keda.enabled .Values.autoscaling.enabled -}}
{{- fail "keda.enabled and autoscaling.enabled both scale the same Deployments: enable one." -}}
{{- end -}}
{{- $running := list -}}
{{- range $role, $spec := (include "merch-pipeline.roles" . | fromYaml) -}}
{{- if not $spec.consumers -}}
{{- fail (printf "roles.%s.consumers is empty: list design-approved, product-created, design-withdrawn and/or fourthwall-changes" $role) -}}
{{- end -}}
{{- $running = concat $running $spec.consumers -}}
{{- end -}}
{{- range list "design-approved" "product-created" "design-withdrawn" "fourthwall-changes" -}}
{{- if not (has . $running) -}}
{{- fail (printf "no role runs the %s consumer: its queue would fill and nobody would act on it. Add it to a role's consumers (docs/deployment.md, roles)." .) -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/* The queue each consumer reads, for KEDA. */}}
{{- define "merch-pipeline.queue" -}}
{{- printf "merch-pipeline.%s" . -}}
{{- end -}}

{{/* The roles to deploy: .Values.roles, or one role "all" from .Values.defaultRole. */}}
{{- define "merch-pipeline.roles" -}}
{{- if .Values.roles -}}
{{- toYaml .Values.roles -}}
{{- else -}}
{{- toYaml (dict "all" .Values.defaultRole) -}}
{{- end -}}
{{- end -}}
