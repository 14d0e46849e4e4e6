{{/* The shared PostgreSQL database (postgresql.external): set = the facade's callback jobs and the
receiver's results live there (replicas > 1 allowed), and MLflow uses it unless mlflow.backendStore is set. */}}
{{- define "btcf.database.enabled" -}}
{{- if or .Values.postgresql.external.url .Values.postgresql.external.existingSecret }}true{{ end -}}
{{- end }}

{{- define "btcf.database.secretName" -}}
{{- .Values.postgresql.external.existingSecret | default (printf "%s-database" (include "btcf.fullname" .)) -}}
{{- end }}

{{/* A projected-volume source putting the database URL at file `path` of SECRETS_DIR: (dict "ctx" . "path" "DATABASE_URL"). */}}
{{- define "btcf.database.secretSources" -}}
{{- $ctx := .ctx -}}
{{- if include "btcf.database.enabled" $ctx -}}
{{- $item := dict "key" $ctx.Values.postgresql.external.existingSecretKey "path" .path -}}
{{- toJson (list (dict "secret" (dict "name" (include "btcf.database.secretName" $ctx) "items" (list $item)))) -}}
{{- else -}}
[]
{{- end -}}
{{- end }}

{{/* fail unless a component with more than one replica (or an autoscaler) has the shared database. */}}
{{- define "btcf.database.requiredForReplicas" -}}
{{- $v := index .ctx.Values .component -}}
{{- $many := or (gt (int $v.replicas) 1) (and $v.autoscaling $v.autoscaling.enabled) -}}
{{- if and $many (not (include "btcf.database.enabled" .ctx)) -}}
{{- fail (printf "%s.replicas > 1 (or %s.autoscaling.enabled) needs postgresql.external.url or postgresql.external.existingSecret: without a shared database its state is one sqlite file on a ReadWriteOnce volume" .component .component) -}}
{{- end -}}
{{- end }}
