{{/* The predictor container, identical under KServe and in the plain Deployment. */}}
{{- define "btcf.predictor.container" -}}
- name: kserve-container
  image: {{ include "btcf.image" (dict "image" .Values.predictor.image "global" .Values.global) }}
  imagePullPolicy: {{ include "btcf.pullPolicy" (dict "image" .Values.predictor.image "global" .Values.global) }}
  command: [python, -m, predictor, --model_name, {{ .Values.predictor.kserve.name | quote }}, --http_port, "8080"]
  env:
    {{- include "btcf.coreEnv" . | nindent 4 }}
    {{- with .Values.predictor.modelVersion }}
    - name: MODEL_VERSION
      value: {{ . | quote }}
    {{- end }}
    - name: MAX_WINDOWS
      value: {{ .Values.predictor.maxWindows | quote }}
    - name: VERSION_CACHE_SIZE
      value: {{ .Values.predictor.versionCacheSize | quote }}
    - name: TORCH_THREADS
      value: {{ .Values.predictor.torchThreads | quote }}
    - name: HOME
      value: /tmp
    {{- with .Values.predictor.extraEnv }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
  ports:
    - name: http
      containerPort: 8080
      protocol: TCP
  readinessProbe:
    httpGet:
      path: /v2/health/ready
      port: 8080
    periodSeconds: 5
    failureThreshold: 3
  # Slow starts (a busy node, a cold cache) are given 5 minutes before liveness applies.
  startupProbe:
    httpGet:
      path: /v2/health/live
      port: 8080
    periodSeconds: 5
    failureThreshold: 60
  livenessProbe:
    httpGet:
      path: /v2/health/live
      port: 8080
    periodSeconds: 20
  resources:
    {{- toYaml .Values.predictor.resources | nindent 4 }}
  securityContext:
    {{- include "btcf.containerSecurityContext" . | nindent 4 }}
  volumeMounts:
    - name: tmp
      mountPath: /tmp
    - name: state
      mountPath: /state
    {{- include "btcf.secretsMount" . | nindent 4 }}
{{- end }}

{{- define "btcf.predictor.volumes" -}}
{{ include "btcf.tmpVolume" . }}
# Model file cache; versions are re-downloaded after a restart.
- name: state
  emptyDir:
    sizeLimit: 2Gi
{{ include "btcf.secretsVolume" (dict "ctx" . "keys" (list "RELOAD_TOKEN") "s3" true) }}
{{- end }}

{{/* The pod-level fields both forms share. */}}
{{- define "btcf.predictor.podFields" -}}
automountServiceAccountToken: false
{{- with .Values.global.imagePullSecrets }}
imagePullSecrets:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with include "btcf.podScheduling" .Values.predictor }}
{{ . }}
{{- end }}
securityContext:
  {{- include "btcf.podSecurityContext" . | nindent 2 }}
{{- end }}
