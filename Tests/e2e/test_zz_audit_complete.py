"""Runs last: nginx's access log and the audit log tell the same story.

docs/api.md: one audit row for every request to /v1/*, whatever its outcome. Every /v1 line nginx
logged for the main stack carries the gateway's X-Request-Id (rid=…); each must be in
`audit export` exactly once, and the row count must equal the number of /v1 requests.
"""

from __future__ import annotations

import re
import time
from collections import Counter

import gwstack

LINE = re.compile(r'"(?P<method>[A-Z]+) (?P<uri>\S+) HTTP/[\d.]+" (?P<status>\d{3}) .*\brid=(?P<rid>\S+)')


def test_every_v1_request_has_exactly_one_audit_row(stack):
    # Make sure the log has something to check even when this file runs alone.
    with stack.http() as http:
        http.post("/v1/chat/completions", headers=stack.auth(),
                  json={"model": "gpt-4o", "messages": [{"role": "user", "content": "last one"}]})
        http.get("/v1/models")  # no key: 401, audited too
    time.sleep(0.2)  # nginx writes the access line when the response is done

    lines = [line for line in stack.access_log.read_text().splitlines() if '"' in line]
    v1 = []
    for line in lines:
        match = LINE.search(line)
        assert match, f"unparsable access-log line: {line}"
        if match["uri"].startswith("/v1/") or match["uri"] == "/v1":
            v1.append(match)
    assert v1, "nginx logged no /v1 request"
    missing_rid = [m.group(0) for m in v1 if not m["rid"].startswith("req_")]
    assert not missing_rid, f"{len(missing_rid)} /v1 lines without a request id, e.g. {missing_rid[:3]}"
    logged = Counter(m["rid"] for m in v1)
    assert all(n == 1 for n in logged.values()), [rid for rid, n in logged.items() if n > 1][:5]

    # Rows are written asynchronously: wait (bounded) until every logged id has its row.
    deadline = time.monotonic() + 15
    while True:
        rows = stack.audit_rows()
        audited = Counter(row["request_id"] for row in rows)
        missing = [rid for rid in logged if rid not in audited]
        if not missing or time.monotonic() > deadline:
            break
        time.sleep(0.2)

    counts = (f"nginx /v1 access-log lines: {len(v1)}; audit rows: {len(rows)}; distinct audited ids: {len(audited)}; "
              f"missing: {len(missing)}")
    print("\n" + counts)
    gwstack.SUMMARY.append("audit completeness: " + counts)
    assert not missing, f"{len(missing)} requests nginx logged have no audit row, e.g. {missing[:5]}"
    duplicated = [rid for rid, n in audited.items() if n > 1]
    assert not duplicated, f"{len(duplicated)} request ids have several audit rows, e.g. {duplicated[:5]}"
    unknown = [rid for rid in audited if rid not in logged]
    assert not unknown, f"{len(unknown)} audit rows for requests nginx never logged, e.g. {unknown[:5]}"
    assert len(rows) == len(v1)
