{{/* The shared PostgreSQL database (postgresql.external, or postgresql.bundled: a server in the release):
set = the facade's callback jobs and the receiver's results live there (replicas > 1 allowed), and MLflow
uses it unless mlflow.backendStore is set. */}}
{{- define "btcf.database.enabled" -}}
{{- $external := or .Values.postgresql.external.url .Values.postgresql.external.existingSecret -}}
{{- if and $external .Values.postgresql.bundled.enabled -}}
{{- fail "postgresql.bundled.enabled and postgresql.external are exclusive: set one of them" -}}
{{- end -}}
{{- if or $external .Values.postgresql.bundled.enabled }}true{{ end -}}
{{- end }}

{{- define "btcf.database.secretName" -}}
{{- if .Values.postgresql.bundled.enabled -}}
{{- printf "%s-database" (include "btcf.fullname" .) -}}
{{- else -}}
{{- .Values.postgresql.external.existingSecret | default (printf "%s-database" (include "btcf.fullname" .)) -}}
{{- end -}}
{{- end }}


{{/* A projected-volume source putting the database URL at file `path` of SECRETS_DIR: (dict "ctx" . "path" "DATABASE_URL"). */}}
{{- define "btcf.database.secretSources" -}}
{{- $ctx := .ctx -}}
{{- if include "btcf.database.enabled" $ctx -}}
{{- $key := ternary .path $ctx.Values.postgresql.external.existingSecretKey $ctx.Values.postgresql.bundled.enabled -}}
{{- $item := dict "key" $key "path" .path -}}
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
{{- fail (printf "%s.replicas > 1 (or %s.autoscaling.enabled) needs postgresql.external.url, postgresql.external.existingSecret or postgresql.bundled.enabled: without a shared database its state is one sqlite file on a ReadWriteOnce volume" .component .component) -}}
{{- end -}}
{{- end }}
