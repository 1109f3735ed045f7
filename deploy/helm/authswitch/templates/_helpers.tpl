{{/* Names and labels. */}}
{{- define "authswitch.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "authswitch.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else if contains (include "authswitch.name" .) .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name (include "authswitch.name" .) | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "authswitch.selectorLabels" -}}
app.kubernetes.io/name: {{ include "authswitch.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "authswitch.labels" -}}
{{ include "authswitch.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{- end -}}

{{- define "authswitch.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "authswitch.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{- define "authswitch.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) -}}
{{- end -}}

{{/* Where the chart mounts what authswitch.yaml names. */}}
{{- define "authswitch.configDir" -}}/etc/authswitch{{- end -}}
{{- define "authswitch.secretsDir" -}}/var/run/secrets/authswitch{{- end -}}

{{/* The Redis block every Redis user in authswitch takes (foundation/redis_settings.py). */}}
{{- define "authswitch.redisSettings" -}}
{{- $redis := .Values.redis -}}
{{- $secrets := include "authswitch.secretsDir" . -}}
{{- if and (eq $redis.topology "cluster") (not (contains "{" $redis.keyPrefix)) -}}
{{- fail "redis.keyPrefix must hold a hash tag such as {authswitch} with redis.topology cluster" -}}
{{- end -}}
url: {{ $redis.url | quote }}
key_prefix: {{ $redis.keyPrefix | quote }}
topology: {{ $redis.topology }}
pubsub: {{ $redis.pubsub }}
poll_seconds: {{ $redis.pollSeconds }}
client_name: {{ $redis.clientName }}
{{- if $redis.passwordSecret.name }}
password_file: {{ $secrets }}/redis/password
{{- end }}
{{- if $redis.tls.caSecret.name }}
ca_file: {{ $secrets }}/redis-ca/ca.crt
{{- end }}
{{- if $redis.tls.clientCertSecret }}
cert_file: {{ $secrets }}/redis-client/tls.crt
key_file: {{ $secrets }}/redis-client/tls.key
{{- end }}
{{- if eq $redis.topology "sentinel" }}
{{- if or (not $redis.sentinel.masterName) (not $redis.sentinel.addresses) }}
{{- fail "redis.topology sentinel needs redis.sentinel.masterName and redis.sentinel.addresses" }}
{{- end }}
sentinel:
  master_name: {{ $redis.sentinel.masterName | quote }}
  addresses: {{ toJson $redis.sentinel.addresses }}
  tls: {{ $redis.sentinel.tls }}
  {{- if $redis.sentinel.passwordSecret.name }}
  password_file: {{ $secrets }}/sentinel/password
  {{- end }}
{{- end }}
{{- end -}}

{{/* authswitch.yaml: the user's config with what the chart owns set over it. */}}
{{- define "authswitch.config" -}}
{{- $config := deepCopy .Values.config -}}
{{- $redis := include "authswitch.redisSettings" . | fromYaml -}}
{{- $_ := set $config "listen" (dict "host" "0.0.0.0" "port" 8080) -}}
{{- $_ := set $config "connection_map" "connections.yaml" -}}
{{- $_ := set $config "connection_map_redis" $redis -}}
{{- $flags := deepCopy (default dict $config.flags) -}}
{{- $_ := set $flags "backend" "redis" -}}
{{- $_ := set $flags "redis" (merge (deepCopy (default dict $flags.redis)) $redis) -}}
{{- $_ := set $config "flags" $flags -}}
{{- $_ := set $config "ops" (merge (dict "host" "0.0.0.0" "port" (int .Values.ops.port)) (default dict $config.ops)) -}}
{{- toYaml $config -}}
{{- end -}}

{{/* The files under /etc/authswitch. */}}
{{- define "authswitch.configData" -}}
authswitch.yaml: |
  {{- include "authswitch.config" . | nindent 2 }}
connections.yaml: |
  {{- toYaml .Values.connectionMap.connections | nindent 2 }}
{{- end -}}

{{/* Volumes with the Redis credentials and /tmp, shared by the pods and the push Job (each
names its own `config` volume). */}}
{{- define "authswitch.volumes" -}}
{{- with .Values.redis.passwordSecret }}
{{- if .name }}
- name: redis-password
  secret:
    secretName: {{ .name }}
    defaultMode: 288  # 0440: readable by the pod's group (fsGroup)
    items:
      - key: {{ .key }}
        path: password
{{- end }}
{{- end }}
{{- with .Values.redis.sentinel.passwordSecret }}
{{- if .name }}
- name: sentinel-password
  secret:
    secretName: {{ .name }}
    defaultMode: 288
    items:
      - key: {{ .key }}
        path: password
{{- end }}
{{- end }}
{{- with .Values.redis.tls.caSecret }}
{{- if .name }}
- name: redis-ca
  secret:
    secretName: {{ .name }}
    defaultMode: 288
    items:
      - key: {{ .key }}
        path: ca.crt
{{- end }}
{{- end }}
{{- if .Values.redis.tls.clientCertSecret }}
- name: redis-client
  secret:
    secretName: {{ .Values.redis.tls.clientCertSecret }}
    defaultMode: 288
{{- end }}
- name: tmp
  emptyDir:
    medium: Memory
    sizeLimit: 64Mi
{{- with .Values.extraVolumes }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{- define "authswitch.volumeMounts" -}}
{{- $secrets := include "authswitch.secretsDir" . -}}
# The whole directory, not subPath: a ConfigMap update then arrives as one atomic swap.
- name: config
  mountPath: {{ include "authswitch.configDir" . }}
  readOnly: true
{{- if .Values.redis.passwordSecret.name }}
- name: redis-password
  mountPath: {{ $secrets }}/redis
  readOnly: true
{{- end }}
{{- if .Values.redis.sentinel.passwordSecret.name }}
- name: sentinel-password
  mountPath: {{ $secrets }}/sentinel
  readOnly: true
{{- end }}
{{- if .Values.redis.tls.caSecret.name }}
- name: redis-ca
  mountPath: {{ $secrets }}/redis-ca
  readOnly: true
{{- end }}
{{- if .Values.redis.tls.clientCertSecret }}
- name: redis-client
  mountPath: {{ $secrets }}/redis-client
  readOnly: true
{{- end }}
- name: tmp
  mountPath: /tmp
{{- with .Values.extraVolumeMounts }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{- define "authswitch.podSecurityContext" -}}
runAsNonRoot: true
runAsUser: 10001
runAsGroup: 10001
fsGroup: 10001
seccompProfile:
  type: RuntimeDefault
{{- end -}}

{{- define "authswitch.containerSecurityContext" -}}
allowPrivilegeEscalation: false
readOnlyRootFilesystem: true
runAsNonRoot: true
capabilities:
  drop: ["ALL"]
{{- end -}}

{{- define "authswitch.env" -}}
# So that `kubectl exec deploy/... -- authswitch flags ...` finds the config.
- name: AUTHSWITCH_CONFIG
  value: {{ include "authswitch.configDir" . }}/authswitch.yaml
{{- with .Values.extraEnv }}
{{ toYaml . }}
{{- end }}
{{- end -}}
