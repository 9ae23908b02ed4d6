{{/* Chart name, truncated to the 63 characters of a DNS label. */}}
{{- define "ebpf-net.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Full name: release-chart, or the release name alone when it already contains the chart name. */}}
{{- define "ebpf-net.fullname" -}}
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

{{- define "ebpf-net.collector.fullname" -}}
{{- printf "%s-collector" (include "ebpf-net.fullname" .) | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "ebpf-net.reducer.fullname" -}}
{{- printf "%s-reducer" (include "ebpf-net.fullname" .) | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Labels on every object. */}}
{{- define "ebpf-net.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
app.kubernetes.io/name: {{ include "ebpf-net.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: ebpf-net
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{/* Selector labels of one component: include with (dict "ctx" $ "component" "collector"). */}}
{{- define "ebpf-net.selectorLabels" -}}
app.kubernetes.io/name: {{ include "ebpf-net.name" .ctx }}
app.kubernetes.io/instance: {{ .ctx.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end }}

{{/* An image reference: include with (dict "ctx" $ "image" .Values.collector.image). */}}
{{- define "ebpf-net.image" -}}
{{- printf "%s:%s" .image.repository (default .ctx.Chart.AppVersion .image.tag) }}
{{- end }}

{{- define "ebpf-net.collector.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}{{ include "ebpf-net.collector.fullname" . }}{{ else }}default{{ end }}
{{- end }}

{{- define "ebpf-net.reducer.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}{{ include "ebpf-net.reducer.fullname" . }}{{ else }}default{{ end }}
{{- end }}

{{/* The reducer's intake as the collector (host network, cluster DNS) reaches it. */}}
{{- define "ebpf-net.reducer.intakeHost" -}}
{{- printf "%s.%s.svc.%s" (include "ebpf-net.reducer.fullname" .) .Release.Namespace .Values.clusterDomain }}
{{- end }}
