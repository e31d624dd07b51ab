{{/* Chart name. */}}
{{- define "nexus.name" -}}
{{- .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* Release-scoped name prefix of every object. */}}
{{- define "nexus.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{/* Labels on every object. */}}
{{- define "nexus.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
app.kubernetes.io/part-of: nexus-telemetry
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
{{- end -}}

{{/* Selector labels of one component: include "nexus.selectorLabels" (dict "ctx" $ "component" "api"). */}}
{{- define "nexus.selectorLabels" -}}
app.kubernetes.io/name: {{ include "nexus.name" .ctx }}-{{ .component }}
app.kubernetes.io/instance: {{ .ctx.Release.Name }}
{{- end -}}

{{/* The application image (one image, every role). */}}
{{- define "nexus.image" -}}
{{- printf "%s:%s" .Values.image.repository (.Values.image.tag | default .Chart.AppVersion) -}}
{{- end -}}

{{/* Name of the etcd StatefulSet and its headless Service. */}}
{{- define "nexus.etcdName" -}}
{{- printf "%s-etcd" (include "nexus.fullname" .) | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* ETCD_ENDPOINTS: the members of the bundled StatefulSet, or etcd.externalEndpoints. */}}
{{- define "nexus.etcdEndpoints" -}}
{{- if .Values.etcd.enabled -}}
{{- $name := include "nexus.etcdName" . -}}
{{- $endpoints := list -}}
{{- range $i := until (int .Values.etcd.replicas) -}}
{{- $endpoints = append $endpoints (printf "%s-%d.%s:2379" $name $i $name) -}}
{{- end -}}
{{- join "," $endpoints -}}
{{- else -}}
{{- required "etcd.externalEndpoints is required when etcd.enabled is false" .Values.etcd.externalEndpoints -}}
{{- end -}}
{{- end -}}

{{/* --initial-cluster of the bundled etcd. */}}
{{- define "nexus.etcdInitialCluster" -}}
{{- $name := include "nexus.etcdName" . -}}
{{- $ns := .Release.Namespace -}}
{{- $members := list -}}
{{- range $i := until (int .Values.etcd.replicas) -}}
{{- $members = append $members (printf "%s-%d=http://%s-%d.%s.%s.svc:2380" $name $i $name $i $name $ns) -}}
{{- end -}}
{{- join "," $members -}}
{{- end -}}

{{/* Secret holding the PostgreSQL password (and REDIS_URL, which may carry one). */}}
{{- define "nexus.secretName" -}}
{{- printf "%s-secrets" (include "nexus.fullname" .) -}}
{{- end -}}

{{/* Secret and key of the PostgreSQL password. */}}
{{- define "nexus.postgresSecretName" -}}
{{- .Values.postgres.existingSecret | default (include "nexus.secretName" .) -}}
{{- end -}}

{{/* Secret holding NATS_PASSWORD under nats.passwordKey: nats.existingSecret or the chart's. */}}
{{- define "nexus.natsSecretName" -}}
{{- .Values.nats.existingSecret | default (include "nexus.secretName" .) -}}
{{- end -}}

{{/* Secret holding REMOTE_WRITE_BEARER_TOKEN under remoteWrite.bearerTokenKey. */}}
{{- define "nexus.remoteWriteSecretName" -}}
{{- .Values.remoteWrite.existingSecret | default (include "nexus.secretName" .) -}}
{{- end -}}

{{/*
NATS_USER and NATS_PASSWORD env entries (collector, streamer; included when nats.user is set). Not in
the ConfigMap: the API would get NATS_USER without NATS_PASSWORD, which the configuration refuses.
*/}}
{{- define "nexus.natsAuthEnv" -}}
- name: NATS_USER
  value: {{ .Values.nats.user | quote }}
- name: NATS_PASSWORD
  valueFrom:
    secretKeyRef:
      name: {{ include "nexus.natsSecretName" . }}
      key: {{ .Values.nats.passwordKey }}
{{- end -}}

{{/* REMOTE_WRITE_BEARER_TOKEN env entry (collector, api; included when a token is configured). */}}
{{- define "nexus.remoteWriteTokenEnv" -}}
- name: REMOTE_WRITE_BEARER_TOKEN
  valueFrom:
    secretKeyRef:
      name: {{ include "nexus.remoteWriteSecretName" . }}
      key: {{ .Values.remoteWrite.bearerTokenKey }}
{{- end -}}

{{/* Pod security context shared by the application pods (the image runs as uid 1000). */}}
{{- define "nexus.podSecurityContext" -}}
runAsNonRoot: true
runAsUser: 1000
runAsGroup: 1000
seccompProfile:
  type: RuntimeDefault
{{- end -}}

{{/* Container security context shared by the application containers. */}}
{{- define "nexus.containerSecurityContext" -}}
allowPrivilegeEscalation: false
readOnlyRootFilesystem: true
capabilities:
  drop: ['ALL']
{{- end -}}
