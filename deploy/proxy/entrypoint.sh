#!/bin/sh
# Start nginx in front of the Dagster UI (:3443, basic authentication) and the API
# (:8443, API keys are the API's own), both over TLS.
#   PROXY_USER, PROXY_PASSWORD  the UI's login (required; the password is hashed here,
#                               SHA-512 crypt, and never written in clear)
#   PROXY_HOSTNAME              the name in a generated certificate (default localhost)
#   PROXY_UI_UPSTREAM           the Dagster webserver, host:port (default dagster-webserver:3000)
#   PROXY_API_UPSTREAM          the API, host:port (default api:8000); nginx resolves both
#                               without search domains: give a full name on Kubernetes
# /certs/tls.crt and /certs/tls.key: the operator's certificate; when absent, a
# self-signed one is made there on first start (its fingerprint is printed: compare it
# with what the browser shows).
set -eu
: "${PROXY_USER:?set PROXY_USER (the Dagster UI login) in .env}"
: "${PROXY_PASSWORD:?set PROXY_PASSWORD (the Dagster UI login) in .env}"
umask 077
hash=$(printf '%s' "$PROXY_PASSWORD" | openssl passwd -6 -stdin)
printf '%s:%s\n' "$PROXY_USER" "$hash" > /run/proxy/htpasswd
unset PROXY_PASSWORD hash
if [ ! -s /certs/tls.crt ] || [ ! -s /certs/tls.key ]; then
    name=${PROXY_HOSTNAME:-localhost}
    openssl req -x509 -newkey rsa:2048 -nodes -days 825 -subj "/CN=$name" \
        -addext "subjectAltName=DNS:$name,DNS:localhost,IP:127.0.0.1" \
        -keyout /certs/tls.key -out /certs/tls.crt 2>/dev/null
    chmod 0644 /certs/tls.crt
    echo "tgmed-proxy: made a self-signed certificate for $name (/certs/tls.crt)"
fi
echo "tgmed-proxy: $(openssl x509 -in /certs/tls.crt -noout -fingerprint -sha256)"
resolver=$(awk '$1 == "nameserver" { print $2; exit }' /etc/resolv.conf)
case $resolver in *:*) resolver="[$resolver]" ;; esac
for upstream in "${PROXY_UI_UPSTREAM:=dagster-webserver:3000}" "${PROXY_API_UPSTREAM:=api:8000}"; do
    case $upstream in
        *[!A-Za-z0-9.:-]* | "") echo "tgmed-proxy: not host:port: $upstream" >&2; exit 2 ;;
    esac
done
sed -e "s/@RESOLVER@/${resolver:?no nameserver in /etc/resolv.conf}/" \
    -e "s/@UI_UPSTREAM@/$PROXY_UI_UPSTREAM/" -e "s/@API_UPSTREAM@/$PROXY_API_UPSTREAM/" \
    /etc/tgmed-proxy/nginx.conf > /run/proxy/nginx.conf
exec nginx -c /run/proxy/nginx.conf -g 'daemon off;'
