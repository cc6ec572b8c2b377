{{- define "wasm-policyd.name" -}}
{{- .Values.nameOverride | default .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "wasm-policyd.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name (include "wasm-policyd.name" .) | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "wasm-policyd.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
app.kubernetes.io/name: {{ include "wasm-policyd.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end -}}

{{- define "wasm-policyd.selector" -}}
app.kubernetes.io/name: {{ include "wasm-policyd.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "wasm-policyd.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- .Values.serviceAccount.name | default (include "wasm-policyd.fullname" .) -}}
{{- else -}}
{{- .Values.serviceAccount.name | default "default" -}}
{{- end -}}
{{- end -}}

{{- define "wasm-policyd.authSecret" -}}
{{- .Values.auth.existingSecret | default (printf "%s-auth" (include "wasm-policyd.fullname" .)) -}}
{{- end -}}

{{/* The mounted files of signatures.publicKeys, comma-separated, for POLICYD_SIGNATURES_KEYS. */}}
{{- define "wasm-policyd.signatureKeyFiles" -}}
{{- $files := list -}}
{{- range $name, $_ := .Values.signatures.publicKeys -}}
{{- $files = append $files (printf "/etc/wasm-policyd/keys/%s" $name) -}}
{{- end -}}
{{- join "," $files -}}
{{- end }}
