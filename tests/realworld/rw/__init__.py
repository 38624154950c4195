"""The real-daemon test world of mtasts (tests/realworld/run is its entry point).

Modules, each importing only those listed before it:

- common     paths of the repository (and the ONE constant naming the Exim integration's
             directory), the namespace's addresses, log(), read_lines(), sh()
- world      world.json with its defaults applied (World), the policy file of a domain
- namespace  the network namespace: creating, entering, deleting, sweeping stale ones; its
             loopback addresses; finding and ending the processes inside it
- pki        openssl: the test CAs and leaf certificates (Certs); the DNSSEC-signed zone
             (SignedZone) and the TLSA data of the leaves' key
- daemons    unbound, nginx and Exim receiver configurations, the Daemons that run them,
             waiting for them to answer, what the receivers saw
- exim       the Exim sender (EximSender) with the shipped snippet, the damaged cache,
             compare_exim()
- postfix    `mtasts serve` (PolicyServer), a socketmap client, Postfix as the sender
             (PostfixSender, run from the package scripts/install-deps unpacks),
             compare_postfix()
- opensmtpd  OpenSMTPD as the sender (OpenSmtpd: Debian's smtpd run from the package
             scripts/install-deps unpacks, in a mount namespace of its own, with the shipped
             smtpd.conf and table-mtasts), one delivery attempt read from its log (Attempt),
             compare_opensmtpd()
- reference  postfix-mta-sts-resolver's daemon (ReferenceServer), the questions asked of it
             and of mtasts serve, its DEPARTURES from the rules
- cases      Results and the Runner of the cases (lookup, python, check, the shared cache,
             Exim deliveries and sequences, Postfix and OpenSMTPD deliveries, the reference
             replies) with compare_lookup() and compare_check()
- outer      the part of a run outside the namespace: makes it, runs the inner part in it,
             tears it down
- inner      the part of a run inside the namespace: the daemons up, the cases, the report
"""
