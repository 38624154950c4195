"""postfix-mta-sts-resolver's daemon (`mta-sts-daemon`) with its network fetch replaced, for the
memory figure only: filling its cache with 100,000 policies through the network would take
minutes (about 480 fetches/s in the real-daemon world) and as many nginx certificates.

Everything else is the daemon's own: its socketmap responder, its internal LRU cache and the
entries it stores (CacheEntry(ts, id, policy dict)). STSResolver.resolve() is replaced by what
it returns for a bench domain of the hermetic world: the id of the TXT record and the policy
text, each parsed by the library's own parsers (parse_mta_sts_record, parse_mta_sts_policy) on
every call, max_age made an int as resolve() does, so every entry holds objects of its own, as
after real fetches. Once the file OFFLINE_FLAG exists, resolve() returns FETCH_ERROR (as an
unreachable world would): an `OK secure` answer after that came from the cache.

    python pmsr_stub_daemon.py OFFLINE_FLAG -c CONFIG [mta-sts-daemon options]
"""

import os
import sys

from postfix_mta_sts_resolver import daemon, resolver, utils

# What the hermetic test world serves for a bench domain (tests/world/src/spec.rs:
# DEFAULT_POLICY, DEFAULT_ID).
TXT = "v=STSv1; id=20240101T000000;"
POLICY = "version: STSv1\nmode: enforce\nmx: mail.example.com\nmx: *.example.net\nmax_age: 86400\n"


def main():
    offline_flag = sys.argv.pop(1)

    async def resolve(self, domain, last_known_id=None):  # noqa: ARG001 - the replaced method's
        if os.path.exists(offline_flag):
            return resolver.STSFetchResult.FETCH_ERROR, None
        record = utils.parse_mta_sts_record(TXT)
        policy = utils.parse_mta_sts_policy(POLICY)
        policy["max_age"] = int(policy["max_age"])
        return resolver.STSFetchResult.VALID, (record["id"], policy)

    resolver.STSResolver.resolve = resolve
    return daemon.main()


if __name__ == "__main__":
    sys.exit(main())
