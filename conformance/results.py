"""Turns tempest's subunit v2 stream into JSON for the conformance test.

Usage: results.py < stream.subunit > results.json

One object per test (setUpClass failures included, under the id tempest
gives them): id, status (success, fail, skip, xfail, uxsuccess, exists),
reason (a skip's reason, or a failure's traceback) and log (the
pythonlogging detail tempest attaches: its request lines).
"""

import json
import sys

import subunit
import testtools


def text(details, key):
    content = details.get(key)
    if content is None:
        return ""
    try:
        return content.as_text()
    except Exception as exc:  # a detail that is not text
        return "<%s: %s>" % (key, exc)


def main():
    tests = []

    def on_test(test):
        details = test["details"]
        reason = text(details, "reason") or text(details, "traceback")
        log = text(details, "pythonlogging:''")
        tests.append({"id": test["id"], "status": test["status"], "reason": reason, "log": log})

    stream = subunit.ByteStreamToStreamResult(sys.stdin.buffer, non_subunit_name="stdout")
    result = testtools.StreamToDict(on_test)
    result.startTestRun()
    try:
        stream.run(result)
    finally:
        result.stopTestRun()
    json.dump(tests, sys.stdout, indent=1)


if __name__ == "__main__":
    main()
