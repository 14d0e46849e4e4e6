{{/* Chart name, truncated to the 63 characters a label allows. */}}
{{- define "btcf.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Fully qualified app name: the release name, unless it does not contain the chart name. */}}
{{- define "btcf.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{- define "btcf.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Labels on every object. */}}
{{- define "btcf.labels" -}}
helm.sh/chart: {{ include "btcf.chart" . }}
{{ include "btcf.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: btc-forecast
{{- end }}

{{/* Release-wide selector labels; never used alone as a workload selector. */}}
{{- define "btcf.selectorLabels" -}}
app.kubernetes.io/name: {{ include "btcf.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{/* Labels of one component: call with (dict "ctx" $ "component" "facade"). */}}
{{- define "btcf.componentLabels" -}}
{{ include "btcf.labels" .ctx }}
app.kubernetes.io/component: {{ .component }}
{{- end }}

{{/* Selector labels of one component: name + instance + component, unique per release. */}}
{{- define "btcf.componentSelectorLabels" -}}
{{ include "btcf.selectorLabels" .ctx }}
app.kubernetes.io/component: {{ .component }}
{{- end }}

{{/* Name of a component's objects: <fullname>-<component>. */}}
{{- define "btcf.componentName" -}}
{{- printf "%s-%s" (include "btcf.fullname" .ctx) .component | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Image reference: call with (dict "image" .Values.x.image "global" .Values.global). A digest, when
given, pins the image and replaces the tag. */}}
{{- define "btcf.image" -}}
{{- $registry := .image.registry | default .global.imageRegistry -}}
{{- $repository := ternary (printf "%s/%s" $registry .image.repository) .image.repository (ne $registry "") -}}
{{- if .image.digest -}}
{{- printf "%s@%s" $repository .image.digest -}}
{{- else -}}
{{- printf "%s:%s" $repository .image.tag -}}
{{- end -}}
{{- end }}

{{- define "btcf.pullPolicy" -}}
{{- .image.pullPolicy | default .global.imagePullPolicy -}}
{{- end }}

{{/* Pod-level security: non-root, fixed uid, RuntimeDefault seccomp. */}}
{{- define "btcf.podSecurityContext" -}}
runAsNonRoot: true
runAsUser: {{ .Values.global.securityContext.runAsUser }}
runAsGroup: {{ .Values.global.securityContext.runAsUser }}
fsGroup: {{ .Values.global.securityContext.runAsUser }}
seccompProfile:
  type: RuntimeDefault
{{- end }}

{{/* Container-level security: read-only root, no escalation, no capabilities. */}}
{{- define "btcf.containerSecurityContext" -}}
runAsNonRoot: true
allowPrivilegeEscalation: false
readOnlyRootFilesystem: true
capabilities:
  drop: [ALL]
seccompProfile:
  type: RuntimeDefault
{{- end }}

{{- define "btcf.secretName" -}}
{{- .Values.secrets.existingSecret | default (printf "%s-secrets" (include "btcf.fullname" .)) }}
{{- end }}

{{- define "btcf.s3SecretName" -}}
{{- if eq .Values.objectStore.mode "external" }}
{{- .Values.objectStore.external.existingSecret | default (printf "%s-s3" (include "btcf.fullname" .)) }}
{{- else }}
{{- .Values.minio.auth.existingSecret | default (printf "%s-s3" (include "btcf.fullname" .)) }}
{{- end }}
{{- end }}

{{/* The S3 endpoint every component talks to. */}}
{{- define "btcf.s3Endpoint" -}}
{{- if eq .Values.objectStore.mode "external" }}
{{- required "objectStore.external.endpoint is required when objectStore.mode=external" .Values.objectStore.external.endpoint }}
{{- else }}
{{- printf "http://%s:%d" (include "btcf.componentName" (dict "ctx" . "component" "minio")) (int .Values.minio.service.port) }}
{{- end }}
{{- end }}

{{- define "btcf.mlflowUrl" -}}
{{- printf "http://%s:%d" (include "btcf.componentName" (dict "ctx" . "component" "mlflow")) (int .Values.mlflow.service.port) }}
{{- end }}

{{/* Where MLflow POSTs alias moves: webhooks.<component>.url, else the component's Service in-cluster. */}}
{{- define "btcf.operatorWebhookUrl" -}}
{{- .Values.webhooks.operator.url | default (printf "http://%s.%s.svc:%d/mlflow-webhook" (include "btcf.componentName" (dict "ctx" . "component" "operator")) .Release.Namespace (int .Values.webhooks.operator.port)) }}
{{- end }}

{{- define "btcf.facadeWebhookUrl" -}}
{{- .Values.webhooks.facade.url | default (printf "http://%s.%s.svc:%d/mlflow-webhook" (include "btcf.componentName" (dict "ctx" . "component" "facade")) .Release.Namespace (int .Values.facade.service.port)) }}
{{- end }}

{{/* Where the operator's quality gate reaches the facade: operator.facadeUrl, else this release's facade Service. */}}
{{- define "btcf.facadeUrl" -}}
{{- if .Values.operator.facadeUrl }}
{{- .Values.operator.facadeUrl }}
{{- else }}
{{- printf "http://%s:%d" (include "btcf.componentName" (dict "ctx" . "component" "facade")) (int .Values.facade.service.port) }}
{{- end }}
{{- end }}

{{/* Where the facade reaches the predictor: KServe's <isvc>-predictor Service, or ours. */}}
{{- define "btcf.predictorUrl" -}}
{{- if .Values.predictor.kserve.enabled }}
{{- printf "http://%s-predictor.%s.svc.cluster.local" .Values.predictor.kserve.name .Release.Namespace }}
{{- else }}
{{- printf "http://%s:%d" (include "btcf.componentName" (dict "ctx" . "component" "predictor")) (int .Values.predictor.service.port) }}
{{- end }}
{{- end }}

{{/* Environment shared by every component that reads CoreSettings (its secrets: btcf.secretsVolume). */}}
{{- define "btcf.coreEnv" -}}
- name: MLFLOW_TRACKING_URI
  value: {{ include "btcf.mlflowUrl" . | quote }}
- name: MODEL_NAME
  value: {{ .Values.model.name | quote }}
- name: MODEL_ALIAS
  value: {{ .Values.model.alias | quote }}
- name: STATE_DIR
  value: /state
- name: S3_ENDPOINT_URL
  value: {{ include "btcf.s3Endpoint" . | quote }}
- name: AWS_REGION
  value: {{ .Values.objectStore.region | quote }}
- name: MARKET_DATA_URI
  value: {{ printf "s3://%s/%s" .Values.objectStore.buckets.marketData .Values.objectStore.marketDataKey | quote }}
{{ include "btcf.secretsDirEnv" . }}
{{- end }}

{{/* Where every container finds its secrets: files named after the variables they replace
(API_TOKEN, AWS_SECRET_ACCESS_KEY, ...), never environment variables. Our components read the directory
named in SECRETS_DIR (CoreSettings); the Job scripts and MinIO read the files themselves. */}}
{{- define "btcf.secretsDir" -}}/etc/btcf/secrets{{- end }}

{{/* The secrets volume: (dict "ctx" $ "keys" (list "API_TOKEN") "s3" true "extra" (list ...)).
keys: keys of the app Secret; s3: the object-store keys too; extra: more projected secret sources. */}}
{{- define "btcf.secretsVolume" -}}
{{- $ctx := .ctx -}}
- name: secrets
  projected:
    defaultMode: 0440
    sources:
      {{- if .s3 }}
      - secret:
          name: {{ include "btcf.s3SecretName" $ctx }}
          items:
            - {key: AWS_ACCESS_KEY_ID, path: AWS_ACCESS_KEY_ID}
            - {key: AWS_SECRET_ACCESS_KEY, path: AWS_SECRET_ACCESS_KEY}
      {{- end }}
      {{- with .keys }}
      - secret:
          name: {{ include "btcf.secretName" $ctx }}
          items:
            {{- range . }}
            - {key: {{ . }}, path: {{ . }}}
            {{- end }}
      {{- end }}
      {{- with .extra }}
      {{- toYaml . | nindent 6 }}
      {{- end }}
{{- end }}

{{- define "btcf.secretsMount" -}}
- name: secrets
  mountPath: {{ include "btcf.secretsDir" . }}
  readOnly: true
{{- end }}

{{- define "btcf.secretsDirEnv" -}}
- name: SECRETS_DIR
  value: {{ include "btcf.secretsDir" . }}
{{- end }}

{{/* A value kept across upgrades: the given one, else the one in the live Secret, else random
(.random if given, else .length alphanumerics). */}}
{{- define "btcf.stableSecretValue" -}}
{{- $given := .given -}}
{{- if $given -}}
{{- $given -}}
{{- else if and .existing .existing.data (hasKey .existing.data .key) -}}
{{- index .existing.data .key | b64dec -}}
{{- else if .random -}}
{{- .random -}}
{{- else -}}
{{- randAlphaNum (int (.length | default 40)) -}}
{{- end -}}
{{- end }}

{{/* Volumes every pod gets: a writable /tmp on a read-only root. */}}
{{- define "btcf.tmpVolume" -}}
- name: tmp
  emptyDir:
    sizeLimit: {{ .Values.global.tmpSizeLimit }}
{{- end }}

{{/* Name of a one-off Job of this revision: (dict "ctx" $ "component" "seed"). Jobs are ordinary
release objects (not hooks, so `helm install --wait` cannot deadlock on them); a pod template is
immutable, so each revision gets its own Job and Helm deletes the previous one on upgrade. */}}
{{- define "btcf.revisionJobName" -}}
{{- printf "%s-%d" (include "btcf.componentName" . | trunc 55 | trimSuffix "-") (int .ctx.Release.Revision) }}
{{- end }}

{{/* S3 connection env of the scripts in files/ (endpoint, region; the keys are files in SECRETS_DIR). */}}
{{- define "btcf.s3Env" -}}
- name: S3_ENDPOINT_URL
  value: {{ include "btcf.s3Endpoint" . | quote }}
- name: AWS_REGION
  value: {{ .Values.objectStore.region | quote }}
{{ include "btcf.secretsDirEnv" . }}
{{- end }}

{{/* Annotations of every PersistentVolumeClaim: kept on uninstall unless told otherwise. */}}
{{- define "btcf.pvcAnnotations" -}}
{{- if .Values.global.keepVolumesOnUninstall }}
annotations:
  helm.sh/resource-policy: keep
{{- end }}
{{- end }}


{{/* metadata.namespace of every namespaced object: explicit, so that rendered output applied with
`kubectl apply -f` lands in the release namespace too. */}}
{{- define "btcf.namespace" -}}
namespace: {{ .Release.Namespace }}
{{- end }}

{{/* Pod-template annotations: (dict "ctx" $ "values" .Values.facade "checksums" (list "secrets")).
A checksum of each named template (secrets, s3-secret) rolls the pods when its content changes. */}}
{{- define "btcf.podAnnotations" -}}
{{- $ctx := .ctx -}}
{{- $annotations := dict -}}
{{- range .checksums -}}
{{- $_ := set $annotations (printf "checksum/%s" .) (include (print $ctx.Template.BasePath "/" . ".yaml") $ctx | sha256sum) -}}
{{- end -}}
{{- with .values.podAnnotations -}}
{{- $annotations = merge $annotations . -}}
{{- end -}}
{{- with $annotations -}}
annotations:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end }}

{{/* Scheduling of a component's pods: its nodeSelector, tolerations and affinity. */}}
{{- define "btcf.podScheduling" -}}
{{- with .nodeSelector -}}
nodeSelector:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .tolerations }}
tolerations:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .affinity }}
affinity:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end }}

{{/* checkov skips that follow from the values, each with its reason, on the object that holds the
pods: (dict "ctx" $ "images" (list .Values.facade.image) "extra" (dict "CKV_K8S_38" "why")).
An image given by tag (no digest) cannot pass "image should use digest"; a pull policy other than
Always cannot pass "pull policy should be Always" (IfNotPresent is what `kind load` needs). */}}
{{- define "btcf.checkovSkips" -}}
{{- $ctx := .ctx -}}
{{- $skips := dict -}}
{{- range .images -}}
{{- if not .digest -}}
{{- $_ := set $skips "CKV_K8S_43" "image given by tag (values image.tag); set image.digest to pin it" -}}
{{- end -}}
{{- if ne (include "btcf.pullPolicy" (dict "image" . "global" $ctx.Values.global)) "Always" -}}
{{- $_ := set $skips "CKV_K8S_15" "pull policy from values (IfNotPresent: images loaded into kind or cached on the node)" -}}
{{- end -}}
{{- end -}}
{{- with .extra -}}
{{- $skips = merge $skips . -}}
{{- end -}}
{{- $lines := list -}}
{{- range $id := keys $skips | sortAlpha -}}
{{- $lines = append $lines (printf "checkov.io/skip-%s: %s" ($id | lower | replace "_" "-") (printf "%s=%s" $id (get $skips $id) | quote)) -}}
{{- end -}}
{{- join "\n" $lines -}}
{{- end }}
