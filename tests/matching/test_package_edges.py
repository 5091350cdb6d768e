"""The portal sorts and compares names without importing the matching engine."""

import subprocess
import sys


def test_the_portal_does_not_import_the_matching_engine():
    code = ("import sys, portal.app; "
            "print(sorted(m for m in sys.modules if m.split('.')[0] == 'matching'))")
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            check=True).stdout.strip()
    assert loaded == "[]"
