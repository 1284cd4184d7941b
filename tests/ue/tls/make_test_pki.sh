#!/bin/sh
# The test PKI of the UE's TLS client tests (tests/ue/tls_client_test.cpp,
# tests/ue_cli): made fresh in DIR by each test run with the openssl command,
# so no key is committed and nothing expires in the tree.
#   ca.pem / ca.key                 the CA the UE trusts (--cacert)
#   other-ca.pem                    a CA the UE does not trust
#   server.pem / server.key         RSA 2048 (the KMS's token key type), DNS:localhost, from ca
#   untrusted.pem / untrusted.key   DNS:localhost, from other-ca
#   wrongname.pem / wrongname.key   DNS:kms.example.org, from ca (host name mismatch)
#   client.pem / client.key         EC P-256 UE certificate CN=ue-alice (clientAuth), from ca; key mode 0600
#   ca-and-other.pem                both CAs in one file (several certificates in --cacert)
# Usage: make_test_pki.sh DIR
set -eu
dir=$1
mkdir -p "$dir"
cd "$dir"
umask 077

ca() {  # name subject
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$1.key" -out "$1.pem" \
    -days 2 -subj "$2" -addext basicConstraints=critical,CA:TRUE \
    -addext keyUsage=critical,keyCertSign,cRLSign 2>/dev/null
}
leaf() {  # name issuer subject extensions keyopts...
  name=$1 issuer=$2 subject=$3 ext=$4
  shift 4
  openssl req -new -newkey "$@" -nodes -keyout "$name.key" -out "$name.csr" -subj "$subject" 2>/dev/null
  printf '%s\n' "$ext" > "$name.ext"
  openssl x509 -req -in "$name.csr" -CA "$issuer.pem" -CAkey "$issuer.key" -CAcreateserial -days 2 \
    -extfile "$name.ext" -out "$name.pem" 2>/dev/null
  rm -f "$name.csr" "$name.ext"
}

server_ext='basicConstraints=CA:FALSE
keyUsage=critical,digitalSignature,keyEncipherment
extendedKeyUsage=serverAuth'
ca ca "/CN=tkms test CA"
ca other-ca "/CN=tkms other CA"
leaf server ca "/CN=localhost" "$server_ext
subjectAltName=DNS:localhost" rsa:2048
leaf untrusted other-ca "/CN=localhost" "$server_ext
subjectAltName=DNS:localhost" ec -pkeyopt ec_paramgen_curve:P-256
leaf wrongname ca "/CN=kms.example.org" "$server_ext
subjectAltName=DNS:kms.example.org" ec -pkeyopt ec_paramgen_curve:P-256
leaf client ca "/CN=ue-alice" 'basicConstraints=CA:FALSE
keyUsage=critical,digitalSignature
extendedKeyUsage=clientAuth' ec -pkeyopt ec_paramgen_curve:P-256
cat ca.pem other-ca.pem > ca-and-other.pem
chmod 600 ./*.key
chmod 644 ./*.pem
