"""checks.py: the tally of checks of the interop tests' Python scripts
(test_reasons.py, test_rogue_steps.py, test_subscriptions.py,
test_peer_audit.py, test_artifact_room.py, test_start_known.py,
test_history_pages.py)."""


class Checks:
    """check(name, ok, detail): counts it; a failed one is printed."""

    def __init__(self, test):
        self.test = test
        self.passes = self.fails = 0

    def __call__(self, name, ok, detail=""):
        if ok:
            self.passes += 1
        else:
            self.fails += 1
            print(f"FAILED: {name}" + (f" ({detail})" if detail else ""), flush=True)

    def end(self):
        """Prints the counts; the script's exit status."""
        print(f"{self.test}: {self.passes} passed, {self.fails} failed", flush=True)
        return 1 if self.fails else 0
