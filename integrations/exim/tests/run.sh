#!/usr/bin/env bash
# Loads the mtasts ${dlfunc} module into a real Exim (Debian's exim4-daemon-heavy) and checks
# the answers of its functions for test-world domains, with `exim -be` and a configuration of
# our own (-C) that includes the shipped snippet integrations/exim/mtasts.conf.
#
#   integrations/exim/tests/run.sh MODULE.so DNS_ADDR CA_PEM POLICY_PORT [SNIPPET]
#
# SNIPPET defaults to integrations/exim/mtasts.conf (`make install-exim` installs it as
# PREFIX/share/mtasts/exim/mtasts.conf).
# run by examples/c/run-tests.sh with a running mtasts-testworld. Prints one line per check
# and "N passed, N failed"; exit status 0 when nothing failed.
set -euo pipefail

module=$1 dns=$2 ca=$3 port=$4
here=$(cd "$(dirname "$0")" && pwd)
snippet=${5:-$(cd "$here/.." && pwd)/mtasts.conf}
# The routers, installed beside the transport snippet.
router=$(dirname "$snippet")/mtasts-router.conf
exim=$(command -v exim4 || command -v exim || true)
if [ -z "$exim" ]; then
  echo "exim: not installed (scripts/install-deps installs exim4-daemon-heavy)" >&2
  exit 1
fi

work=$(mktemp -d /tmp/mtasts-exim.XXXXXX)
trap '[ -n "${KEEP_WORK-}" ] || rm -rf "$work"' EXIT
mkdir -p "$work/spool" "$work/log"
# Exim may run the expansions as its own user: everything it reads must be readable.
chmod 755 "$work" "$work/spool" "$work/log"

# The module's configuration: the test world's DNS server, CA and HTTPS port.
cat > "$work/mtasts.conf" <<EOF
# mtasts_exim.so configuration for the test
nameserver = $dns
trust_roots = $ca
policy_port = $port
cache = memory
fetch_timeout = 10
dns_timeout = 5
log_level = warn
EOF

# A minimal Exim configuration: the snippet in the transports section, a router using it.
cat > "$work/exim.conf" <<EOF
primary_hostname = exim-test.mtasts.invalid
spool_directory = $work/spool
log_file_path = $work/log/%slog
keep_environment =
domainlist local_domains = exim-test.mtasts.invalid
MTASTS_SO = $module
MTASTS_CONF = $work/mtasts.conf

begin routers
.include $router

begin transports
.include $snippet
EOF
chmod 644 "$work/exim.conf" "$work/mtasts.conf"

passed=0 failed=0
check() { # check NAME WANT GOT
  if [ "$2" = "$3" ]; then
    passed=$((passed + 1))
    echo "ok    $1"
  else
    failed=$((failed + 1))
    echo "FAIL  $1: want [$2], got [$3]"
  fi
}

# The shipped snippet is a valid Exim configuration, and the transport has its options.
if "$exim" -C "$work/exim.conf" -bV > "$work/bV.txt" 2>&1; then bv=ok; else bv=failed; fi
check "exim -bV accepts the configuration with the snippet" ok "$bv"
[ "$bv" = ok ] || cat "$work/bV.txt"
transport=$("$exim" -C "$work/exim.conf" -bP transport remote_smtp_mtasts 2>&1 || true)
for option in "multi_domain" "tls_tempfail_tryclear" "tls_sni = \${if eq{\${dlfunc{$module}{sts_tls_or_error}" "hosts_require_tls = \${if inlist{\${dlfunc{$module}{sts_tls_or_error}" \
  "port = \${if eq{\${dlfunc{$module}{sts_mode}" "{tcp:connect}" "{tls:cert}" \
  "{subj_altname,dns}{\$tls_out_peercert}" "{mtasts_event}{\$event_name}" \
  "{\$tls_out_certificate_verified \$tls_out_dane \$tls_out_cipher}"; do
  case "$transport" in
    *"$option"*) check "transport option: $option" yes yes ;;
    *) check "transport option: $option" yes "missing" ;;
  esac
done
[[ "$transport" == *"no_multi_domain"* ]] && md=no || md=yes
check "multi_domain = false" no "$md"
# The routers: the module decides which MX hosts to leave out, and defers when none is left.
routers=$("$exim" -C "$work/exim.conf" -bP routers 2>&1 || true)
for option in "address_data = \${dlfunc{$module}{sts_mode}" \
  "ignore_target_hosts = \${dlfunc{$module}{sts_ignore_hosts}" "data = \${if eq{\${dlfunc{$module}{sts_ignore_hosts}" \
  ":defer: MTA-STS: no MX host of \$domain is usable" "transport = remote_smtp_mtasts"; do
  case "$routers" in
    *"$option"*) check "router option: $option" yes yes ;;
    *) check "router option: $option" yes "missing" ;;
  esac
done
# The TLS-RPT router for left-out MX hosts: its call sits in a condition that is always false
# (it never routes), and it is left out of verification and EXPN.
report_router=$("$exim" -C "$work/exim.conf" -bP router mtasts_report_mx 2>&1 || true)
for option in "no_verify_recipient" "no_verify_sender" "no_expn" \
  "condition = \${if and{{def:message_id}{!eq{\${dlfunc{$module}{sts_ignore_hosts}" \
  "{\${dlfunc{$module}{mtasts_mx_skipped}{\$domain}{\$message_id}{\${lookup dnsdb{>: defer_never,mxh=\$domain}}}" \
  "}}{never}}}}"; do
  case "$report_router" in
    *"$option"*) check "mtasts_report_mx option: $option" yes yes ;;
    *) check "mtasts_report_mx option: $option" yes "missing" ;;
  esac
done
# An Exim built without GnuTLS (OpenSSL) stops at the configuration, with the reason: checked
# by a copy of the snippet that looks for a macro no Exim defines instead of _HAVE_GNUTLS.
sed 's/_HAVE_GNUTLS/_HAVE_NO_SUCH_TLS_LIBRARY/g' "$snippet" > "$work/snippet-no-gnutls.conf"
sed "s|^\.include $snippet\$|.include $work/snippet-no-gnutls.conf|" "$work/exim.conf" > "$work/exim-no-gnutls.conf"
chmod 644 "$work/snippet-no-gnutls.conf" "$work/exim-no-gnutls.conf"
if out=$("$exim" -C "$work/exim-no-gnutls.conf" -bV 2>&1); then ng="accepted"; else ng=$out; fi
case "$ng" in
  *"this snippet needs an Exim built with GnuTLS"*) ng=refused ;;
esac
check "an Exim without GnuTLS refuses the snippet with a clear configuration error" refused "$ng"

# Expands each line of stdin with exim -be; prints one result per line ("> " removed). Log
# lines Exim writes to stderr (when it cannot write its log files) are kept apart.
expand() {
  "$exim" -C "$work/exim.conf" -be 2>> "$work/stderr.txt" | sed -n 's/^> //p'
}

so=$module
call() { # call FUNCTION ARG... : the ${dlfunc} expansion with the test configuration
  local f=$1
  shift
  local args=""
  for a in "$@"; do args="$args{$a}"; done
  printf '${dlfunc{%s}{%s}%s{%s}}\n' "$so" "$f" "$args" "$work/mtasts.conf"
}

# All expansions run in one Exim process: its first lookups fetch, later ones use the cache.
cases=(
  "S-01 mode (enforce)|enforce|$(call sts_mode s01.mtasts.test)"
  "S-02 mode (no policy)|none|$(call sts_mode s02.mtasts.test)"
  "S-22 mode (mode: none policy)|none|$(call sts_mode s22.mtasts.test)"
  "S-10 mode (fetch failed: as if no policy)|none|$(call sts_mode s10.mtasts.test)"
  "S-25 mode (IDN, any case, trailing dot)|enforce|$(call sts_mode Bücher.MTASTS.test.)"
  "address literal: no policy|none|$(call sts_mode '[192.0.2.1]')"
  "S-50 MX allowed|yes|$(call sts_mx_allowed s01.mtasts.test mail.example.com)"
  "S-51 MX allowed (case, trailing dot)|yes|$(call sts_mx_allowed s01.mtasts.test MAIL.Example.COM.)"
  "S-52 MX allowed (wildcard)|yes|$(call sts_mx_allowed s01.mtasts.test mx1.example.net)"
  "S-53 MX not allowed (two labels under the wildcard)|no|$(call sts_mx_allowed s01.mtasts.test a.mx1.example.net)"
  "S-55 MX not allowed|no|$(call sts_mx_allowed s01.mtasts.test evil.com)"
  "S-64 MX allowed without a policy|yes|$(call sts_mx_allowed s02.mtasts.test evil.com)"
  "S-50 TLS requirement|require-tls|$(call sts_tls s01.mtasts.test mail.example.com)"
  "S-55 TLS requirement of a foreign MX|skip|$(call sts_tls s01.mtasts.test evil.com)"
  "S-64 TLS requirement without a policy|no-requirement|$(call sts_tls s02.mtasts.test mail.example.com)"
  "S-01 policy line (the module's first answer for the domain in this process: fetched)|mode=enforce source=fetched id=20240101T000000 max_age=86400 mx=mail.example.com,*.example.net|$(call sts_policy s01.mtasts.test)"
  "S-10 policy line (the failure text varies: checked up to it)|prefix:mode=none source=unavailable failure=sts-policy-fetch-error (|$(call sts_policy s10.mtasts.test)"
  "sts_tls_or_error answers like sts_tls|require-tls|$(call sts_tls_or_error s01.mtasts.test mail.example.com)"
  "sts_tls_or_error: skip for a foreign MX|skip|$(call sts_tls_or_error s01.mtasts.test evil.com)"
  "sts_tls fails the expansion for a host name that is not UTF-8|prefix:Failed: mtasts: sts_tls: |$(call sts_tls s01.mtasts.test $'mail\xff.example.com')"
  "sts_tls_or_error answers error for a host name that is not UTF-8 (never fails)|prefix:error: mtasts: sts_tls: |$(call sts_tls_or_error s01.mtasts.test $'mail\xff.example.com')"
  "sts_tls_or_error answers error for a wrong argument count|error: mtasts: sts_tls takes 2 arguments and an optional configuration file, not 1|\${dlfunc{$so}{sts_tls_or_error}{s01.mtasts.test}}"
  "sts_tls_or_error answers error when the module cannot answer|error: mtasts: configuration: cannot read /nonexistent/mtasts.conf: No such file or directory (os error 2)|\${dlfunc{$so}{sts_tls_or_error}{s01.mtasts.test}{mail.example.com}{/nonexistent/mtasts.conf}}"
  "wrong argument count fails the expansion|Failed: mtasts: sts_mx_allowed takes 2 arguments and an optional configuration file, not 1|\${dlfunc{$so}{sts_mx_allowed}{s01.mtasts.test}}"
  "unreadable configuration defers|Failed: mtasts: configuration: cannot read /nonexistent/mtasts.conf: No such file or directory (os error 2)|\${dlfunc{$so}{sts_mode}{s01.mtasts.test}{/nonexistent/mtasts.conf}}"
)
# The snippet's own macros, with $domain and $host given values.
macro() { "$exim" -C "$work/exim.conf" -bP macro "$1" | sed "s/^$1=//"; }
refuse=$(macro MTASTS_REFUSE_MX)
require=$(macro MTASTS_REQUIRE_TLS)
refuse_cert=$(macro MTASTS_REFUSE_CERT)
sni=$(macro MTASTS_SNI)
new_enough=$(macro MTASTS_EXIM_NEW_ENOUGH)
ignore=$(macro MTASTS_IGNORE_HOSTS)
# The transport's port option: its expansion calls the module (fail closed).
port_option=$(printf '%s\n' "$transport" | sed -n 's/^port = //p')
with() { # with DOMAIN HOST TEXT [DEPTH [TLSA_USAGE [DANE]]]: TEXT with $domain, $host,
  # $event_data, $tls_out_tlsa_usage and $tls_out_dane replaced
  local text=$3
  text=${text//\$domain/$1}
  text=${text//\$event_data/${4-}}
  text=${text//\$tls_out_tlsa_usage/${5-0}}
  text=${text//\$tls_out_dane/${6-no}}
  printf '%s' "${text//\$host/$2}"
}
cases+=(
  "snippet: tcp:connect refused for a foreign MX|MTA-STS: evil.com is not an MX host of the policy of s01.mtasts.test|$(with s01.mtasts.test evil.com "$refuse")"
  "snippet: tcp:connect allowed for a policy MX|<empty>|$(with s01.mtasts.test mail.example.com "$refuse")x"
  "snippet: TLS required for a policy MX|*|$(with s01.mtasts.test mail.example.com "$require")"
  "snippet: no TLS requirement without a policy|<empty>|$(with s02.mtasts.test mail.example.com "$require")x"
  "snippet: port 25 once the module answers for the domain|25|$(with s01.mtasts.test "" "$port_option")"
  "snippet: port fails to expand (delivery deferred) when the module cannot be loaded|Failed: dlopen \"/nonexistent/mtasts_exim.so\" failed: /nonexistent/mtasts_exim.so: cannot open shared object file: No such file or directory|$(with s01.mtasts.test "" "${port_option//$module//nonexistent/mtasts_exim.so}")"
  "snippet: port fails to expand (delivery deferred) when the module cannot answer|Failed: mtasts: configuration: cannot read /nonexistent/mtasts.conf: No such file or directory (os error 2)|$(with s01.mtasts.test "" "${port_option//$work\/mtasts.conf//nonexistent/mtasts.conf}")"
  "snippet: tcp:connect refuses a host the module cannot answer for (fail closed)|MTA-STS: cannot tell what the policy of s01.mtasts.test requires of mail.example.com: error: mtasts: configuration: cannot read /nonexistent/mtasts.conf: No such file or directory (os error 2)|$(with s01.mtasts.test mail.example.com "${refuse//$work\/mtasts.conf//nonexistent/mtasts.conf}")"
  "snippet: tcp:connect refuses a host name the module rejects (fail closed)|prefix:MTA-STS: cannot tell what the policy of s01.mtasts.test requires of mail|$(with s01.mtasts.test $'mail\xff.example.com' "$refuse")"
  "snippet: TLS required for a host the module cannot answer for, even without a policy (fail closed)|*|$(with s02.mtasts.test mail.example.com "${require//$work\/mtasts.conf//nonexistent/mtasts.conf}")"
  "snippet: tls:cert refuses the leaf of a host the module cannot answer for|MTA-STS: refusing mail.example.com for s02.mtasts.test: cannot tell what its policy requires: error: mtasts: configuration: cannot read /nonexistent/mtasts.conf: No such file or directory (os error 2)|$(with s02.mtasts.test mail.example.com "${refuse_cert//$work\/mtasts.conf//nonexistent/mtasts.conf}" 0)"
  "snippet: tls:cert refuses the leaf of a host outside the enforce policy (continued clear-text connection)|MTA-STS: refusing evil.com for s01.mtasts.test: not an MX host of its policy|$(with s01.mtasts.test evil.com "$refuse_cert" 0)"
  "snippet: tls:cert leaves a DANE connection to DANE (TLSA records loaded; R-APPLY-4)|<empty>|$(with s01.mtasts.test mail.example.com "$refuse_cert" 0 8)x"
  "snippet: tls:cert leaves a DANE-verified connection to DANE (R-APPLY-4)|<empty>|$(with s01.mtasts.test mail.example.com "$refuse_cert" 0 0 yes)x"
  "snippet: tls:cert leaves a DANE host outside the policy to DANE (R-APPLY-4)|<empty>|$(with s01.mtasts.test evil.com "$refuse_cert" 0 8)x"
  "snippet: SNI is the host where TLS is required|mail.example.com|$(with s01.mtasts.test mail.example.com "$sni")"
  "snippet: no SNI without a policy (a session without requirement never carries a message that has one)|<empty>|$(with s02.mtasts.test mail.example.com "$sni")x"
  "snippet: a never-matching SNI for a host outside the policy|mtasts-refused.invalid|$(with s01.mtasts.test evil.com "$sni")"
  "snippet: a never-matching SNI for a host the module cannot answer for|mtasts-refused.invalid|$(with s01.mtasts.test mail.example.com "${sni//$work\/mtasts.conf//nonexistent/mtasts.conf}")"
  "snippet: Exim 4.96 is new enough|<empty>|$(with s01.mtasts.test "" "$new_enough")x"
  "snippet: Exim 5.0 is new enough|<empty>|$(with s01.mtasts.test "" "${new_enough//\$version_number/5.0}")x"
  "snippet: Exim 4.94 (no SNI check on continued TLS connections) fails the port expansion|prefix:Failed: dlsym \"mtasts_snippet_needs_exim_4_95_or_newer\" in \"$module\" failed|$(with s01.mtasts.test "" "${new_enough//\$version_number/4.94}")"
  "router: no host ignored without a policy|<empty>|$(with s02.mtasts.test "" "$ignore")x"
  "router: under enforce, every host outside the mx patterns is ignored (one label under a wildcard)|!^mail\\.example\\.com\$ : !^[^.]+\\.example\\.net\$ : *|$(with s01.mtasts.test "" "$ignore")"
  "router: every host ignored when the module cannot answer (fail closed)|*|$(with s01.mtasts.test "" "${ignore//$work\/mtasts.conf//nonexistent/mtasts.conf}")"
  "router: sts_ignore_hosts for a mode: none policy ignores nothing (R-APPLY-3)|<empty>|$(call sts_ignore_hosts s22.mtasts.test)x"
  "snippet: tls:cert refuses a leaf it cannot inspect where TLS is required (fail closed)|MTA-STS: the certificate of mail.example.com has no DNS name in its subjectAltName (no CN fallback, RFC 8461 4.2)|$(with s01.mtasts.test mail.example.com "$refuse_cert" 0)"
  "snippet: tls:cert leaves the chain above the leaf alone|<empty>|$(with s01.mtasts.test mail.example.com "$refuse_cert" 1)x"
  "snippet: tls:cert leaves hosts without a TLS requirement alone|<empty>|$(with s02.mtasts.test mail.example.com "$refuse_cert" 0)x"
)

input=$work/input.txt
: > "$input"
for c in "${cases[@]}"; do
  printf '%s\n' "${c##*|}" >> "$input"
done
mapfile -t results < <(expand < "$input")
i=0
for c in "${cases[@]}"; do
  name=${c%%|*}
  rest=${c#*|}
  want=${rest%%|*}
  got=${results[$i]-<missing>}
  # Cases ending in "x" check for an empty expansion ("x" alone).
  [ "$got" = "x" ] && got="<empty>"
  [ "$want" = "<empty>" ] && [ "$got" = "" ] && got="<empty>"
  if [[ "$want" == prefix:* ]]; then
    want=${want#prefix:}
    [[ "$got" == "$want"* ]] && got=$want
  fi
  check "$name" "$want" "$got"
  i=$((i + 1))
done

# TLS reporting (issue 15, R-RPT-3): mtasts_event, called as the snippet's event_action
# calls it, records into a real SQLite file (the module's cache); read back with sqlite3.
mkdir -p "$work/report"
chmod 750 "$work/report" # the cache directory check: not writable by group or others
sed "s|^cache = memory\$|cache = $work/report/cache.db|" "$work/mtasts.conf" > "$work/report.conf"
chmod 644 "$work/report.conf"
event() { # event NAME DATA DOMAIN HOST ADDRESS CIPHER VERIFIED DANE: one mtasts_event call
  printf '${dlfunc{%s}{mtasts_event}{%s}{%s}{%s}{%s}{%s 192.0.2.1}{%s %s %s}{%s}}x\n' \
    "$so" "$1" "$2" "$3" "$4" "$5" "$7" "$8" "$6" "$work/report.conf"
}
skipped() { # skipped MESSAGE_ID HOSTS: one mtasts_mx_skipped call for s01.mtasts.test
  printf '${dlfunc{%s}{mtasts_mx_skipped}{s01.mtasts.test}{%s}{%s}{%s}}x\n' \
    "$so" "$1" "$2" "$work/report.conf"
}
tls=TLS1.3:ECDHE_X25519__RSA_PSS_RSAE_SHA256__AES_256_GCM:256
{
  event smtp:ehlo "250 ok" s01.mtasts.test mail.example.com 198.51.100.7 "$tls" 1 no
  event msg:host:defer "a TLS session is required, but the server did not offer TLS support" \
    s01.mtasts.test mx2.example.net 198.51.100.8 "" 0 no
  event msg:host:defer "a TLS session is required, but the server did not offer TLS support" \
    s01.mtasts.test mx2.example.net 198.51.100.8 "" 0 no
  event tls:cert "MTA-STS: the certificate of mx3.example.net has no DNS name in its subjectAltName (no CN fallback, RFC 8461 4.2)" \
    s01.mtasts.test mx3.example.net 198.51.100.9 "" 0 no
  event msg:host:defer "TLS session: (gnutls_handshake): Error in the certificate." \
    s01.mtasts.test mx3.example.net 198.51.100.9 "" 0 no
  event msg:host:defer "Connection refused" s01.mtasts.test mx4.example.net 198.51.100.10 "" 0 no
  event tcp:connect "" s01.mtasts.test mx2.example.net 198.51.100.8 "" 0 no
  event msg:host:defer "a TLS session is required, but the server did not offer TLS support" \
    s01.mtasts.test mx2.example.net 198.51.100.8 "" 0 no
  event smtp:ehlo "250 ok" s02.mtasts.test mail.example.com 198.51.100.7 "$tls" 0 no
  event msg:delivery "250 OK id=1" s02.mtasts.test mail.example.com 198.51.100.7 "" 0 no
  event dane:fail validation-failure s02.mtasts.test dane.example.net 198.51.100.11 "" 0 no
  event smtp:ehlo "250 ok" '[192.0.2.9]' mail.example.com 198.51.100.7 "$tls" 1 no
  printf '${dlfunc{%s}{mtasts_event}{smtp:ehlo}}x\n' "$so"
  # The router's report of the MX hosts it leaves out: the library counts those s01's enforce
  # policy does not list (mail.example.com it lists), once per message; not without a message
  # (-bt) nor for s02 (no policy); an empty host list (the lookup found none) counts nothing
  # and does not stand in the way of the message's next address at the domain.
  skipped 1wXyZa-000001-AB 'mail.example.com:mx.elsewhere.example other.example.org'
  skipped 1wXyZa-000001-AB 'mx.elsewhere.example'
  skipped 1wXyZa-000002-CD 'MX.elsewhere.example'
  skipped '' 'mx.elsewhere.example'
  skipped 1wXyZa-000004-GH ''
  skipped 1wXyZa-000004-GH 'other.example.org'
  printf '${dlfunc{%s}{mtasts_mx_skipped}{s02.mtasts.test}{1wXyZa-000003-EF}{mx.elsewhere.example}{%s}}x\n' "$so" "$work/report.conf"
  printf '${dlfunc{%s}{mtasts_mx_skipped}{s01.mtasts.test}}x\n' "$so"
} > "$work/events.txt"
# (Log lines Exim writes while expanding, without a log file of its own, are kept apart.)
expand < "$work/events.txt" > "$work/events.out"
mapfile -t event_results < <(grep -v -e ' mtasts error: ' -e '^$' "$work/events.out")
nonempty=$(printf '%s\n' "${event_results[@]}" | grep -vcx 'x' || true)
check "mtasts_event and mtasts_mx_skipped yield \"\" for every call (${#event_results[@]} calls)" "0/21" "$nonempty/${#event_results[@]}"
if command -v sqlite3 > /dev/null 2>&1; then
  got=$(sqlite3 "$work/report/cache.db" \
    "SELECT domain || ' ' || policy_type || ' ' || successful || ' ' || failed FROM tlsrpt_policies ORDER BY domain, policy_type" 2>&1 | paste -sd ';')
  check "TLS-RPT sessions per domain and policy type (success at smtp:ehlo, failures at msg:host:defer, dane:fail, msg:delivery in clear)" \
    "s01.mtasts.test sts 1 7;s02.mtasts.test no-policy-found 1 1;s02.mtasts.test tlsa 0 1" "$got"
  got=$(sqlite3 "$work/report/cache.db" \
    "SELECT result_type || ' ' || receiving_mx_hostname || ' ' || receiving_ip || ' ' || sending_mta_ip || ' ' || failure_reason_code || ' ' || count FROM tlsrpt_failures ORDER BY result_type, receiving_mx_hostname" 2>&1 | paste -sd ';')
  check "TLS-RPT failure details (the tls:cert refusal counted as certificate-no-san; one per connection; skipped MX hosts outside the policy as mx-mismatch, once per message)" \
    "certificate-host-mismatch mx3.example.net 198.51.100.9 192.0.2.1 certificate-no-san 1;starttls-not-supported mail.example.com 198.51.100.7 192.0.2.1 starttls-not-offered 1;starttls-not-supported mx2.example.net 198.51.100.8 192.0.2.1 starttls-not-offered 2;validation-failure dane.example.net 198.51.100.11 192.0.2.1  1;validation-failure mx.elsewhere.example   mx-mismatch 2;validation-failure other.example.org   mx-mismatch 2" "$got"
else
  check "sqlite3 for the TLS-RPT checks" installed missing
fi
if grep -qs "mtasts error: mtasts_event: takes 6 arguments" "$work/log/mainlog" "$work/stderr.txt" "$work/events.out"; then
  lg=yes
else
  lg=no
fi
check "mtasts_event with wrong arguments logs and yields \"\"" yes "$lg"
if grep -qs "mtasts error: mtasts_mx_skipped: takes 3 arguments" "$work/log/mainlog" "$work/stderr.txt" "$work/events.out"; then
  lg=yes
else
  lg=no
fi
check "mtasts_mx_skipped with wrong arguments logs and yields \"\"" yes "$lg"
# The snippet's hook expands (outside an event: no event name, nothing recorded) to nothing.
# (Not with() values: `exim -be` cuts input lines at 1024 bytes.)
event_report=$(macro MTASTS_EVENT_REPORT)
mapfile -t hook < <(printf '%s\n' "${event_report}x" | expand)
check "snippet: the event hook expands and yields nothing" "x" "${hook[0]-<missing>}"

# The library's warnings reach Exim's main log through the log callback (Exim writes its log to
# stderr instead when the log directory is not writable by the user it runs as).
if grep -qs "mtasts warning: s10.mtasts.test" "$work/log/mainlog" "$work/stderr.txt"; then
  lg=yes
else
  lg=no
fi
check "library warnings in Exim's main log" yes "$lg"

echo "exim: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
