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

{{/* Image reference: call with (dict "image" .Values.x.image "global" .Values.global). */}}
{{- define "btcf.image" -}}
{{- $registry := .image.registry | default .global.imageRegistry -}}
{{- if $registry -}}
{{- printf "%s/%s:%s" $registry .image.repository .image.tag -}}
{{- else -}}
{{- printf "%s:%s" .image.repository .image.tag -}}
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

{{/* Environment shared by every component that reads CoreSettings. */}}
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
- name: AWS_ACCESS_KEY_ID
  valueFrom:
    secretKeyRef:
      name: {{ include "btcf.s3SecretName" . }}
      key: AWS_ACCESS_KEY_ID
- name: AWS_SECRET_ACCESS_KEY
  valueFrom:
    secretKeyRef:
      name: {{ include "btcf.s3SecretName" . }}
      key: AWS_SECRET_ACCESS_KEY
- name: MARKET_DATA_URI
  value: {{ printf "s3://%s/%s" .Values.objectStore.buckets.marketData .Values.objectStore.marketDataKey | quote }}
{{- end }}

{{/* A key of the app Secret as an env var: (dict "ctx" $ "name" "API_TOKEN"). */}}
{{- define "btcf.secretEnv" -}}
- name: {{ .name }}
  valueFrom:
    secretKeyRef:
      name: {{ include "btcf.secretName" .ctx }}
      key: {{ .name }}
{{- end }}

{{/* A value kept across upgrades: the given one, else the one in the live Secret, else random. */}}
{{- define "btcf.stableSecretValue" -}}
{{- $given := .given -}}
{{- if $given -}}
{{- $given -}}
{{- else if and .existing .existing.data (hasKey .existing.data .key) -}}
{{- index .existing.data .key | b64dec -}}
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

{{/* S3 connection env of the scripts in files/ (endpoint, region, keys). */}}
{{- define "btcf.s3Env" -}}
- name: S3_ENDPOINT_URL
  value: {{ include "btcf.s3Endpoint" . | quote }}
- name: AWS_REGION
  value: {{ .Values.objectStore.region | quote }}
- name: AWS_ACCESS_KEY_ID
  valueFrom:
    secretKeyRef:
      name: {{ include "btcf.s3SecretName" . }}
      key: AWS_ACCESS_KEY_ID
- name: AWS_SECRET_ACCESS_KEY
  valueFrom:
    secretKeyRef:
      name: {{ include "btcf.s3SecretName" . }}
      key: AWS_SECRET_ACCESS_KEY
{{- end }}

{{/* Annotations of every PersistentVolumeClaim: kept on uninstall unless told otherwise. */}}
{{- define "btcf.pvcAnnotations" -}}
{{- if .Values.global.keepVolumesOnUninstall }}
annotations:
  helm.sh/resource-policy: keep
{{- end }}
{{- end }}
