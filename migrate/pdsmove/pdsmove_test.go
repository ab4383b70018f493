package pdsmove

import (
	"errors"
	"strings"
	"testing"
)

// Every step says where the account stands if it has not completed, and
// the message names the step, the state and what to run next.
func TestStateAtEveryStep(t *testing.T) {
	seen := map[string]bool{}
	for _, s := range Steps() {
		st := stateAt(s, "old.example", "new.example")
		if st == "unknown" || !strings.Contains(st, "example") {
			t.Errorf("%s: %q", s, st)
		}
		seen[st] = true
	}
	if !strings.Contains(stateAt(StepSignPLC, "old", "new"), "still lives on old") ||
		!strings.Contains(stateAt(StepDeactivateOld, "old", "new"), "lives on new and is active there") {
		t.Error("states before and after the PLC operation")
	}
	cause := errors.New("boom")
	e := &StepError{Step: StepSubmitPLC, Err: cause, State: "s", Next: "n"}
	if !errors.Is(e, cause) || e.Error() != "step submit-plc: boom\n  the account: s\n  next: n" {
		t.Errorf("%q", e.Error())
	}
	if len(Steps()) != 9 || len(seen) < 4 {
		t.Errorf("steps %v, states %d", Steps(), len(seen))
	}
}

func TestPlanBlockers(t *testing.T) {
	p := Plan{Checks: []Check{{OK: true, Detail: "fine"}, {OK: false, Blocking: true, Detail: "stop"}, {OK: false, Detail: "warn"}}}
	if !p.Blocked() || strings.Join(p.Blockers(), ",") != "stop" {
		t.Errorf("%v", p.Blockers())
	}
}
