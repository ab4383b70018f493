package fakemisskey

import (
	"net/http"
	"strings"
	"testing"
	"time"
)

func errID(body map[string]any) string {
	e, _ := body["error"].(map[string]any)
	id, _ := e["id"].(string)
	return id
}

// The sign-in answers as SigninApiService does: next steps, error ids,
// the native token, and its own limit's 429; the older route only with
// LegacySignin; meta names the captcha.
func TestSigninAnswers(t *testing.T) {
	s := Start(Config{RateLimits: map[string]RateLimit{"signin": {Max: 6, Duration: time.Hour}}})
	defer s.Close()
	id := s.AddUser("ann", "pw")
	if st, b := post(t, s, "signin-flow", `{"username":"ann"}`); st != 200 || b["next"] != "captcha" || b["finished"] != false {
		t.Errorf("no password: %d %v", st, b)
	}
	if st, b := post(t, s, "signin-flow", `{"username":"ann","password":"no"}`); st != 403 || errID(b) != signinIDWrong {
		t.Errorf("wrong password: %d %v", st, b)
	}
	if st, b := post(t, s, "signin-flow", `{"username":"zed","password":"no"}`); st != 403 || errID(b) != signinIDNoUser {
		t.Errorf("no such user: %d %v", st, b)
	}
	st, b := post(t, s, "signin-flow", `{"username":"ANN","password":"pw"}`)
	if st != 200 || b["finished"] != true || b["id"] != id || b["i"] != s.NativeToken(id) || s.Logins(id) != 1 {
		t.Errorf("signed in: %d %v", st, b)
	}
	s.EnableTwoFactor(id, "JBSWY3DPEHPK3PXP", false)
	if st, b := post(t, s, "signin-flow", `{"username":"ann","password":"pw"}`); st != 200 || b["next"] != "totp" {
		t.Errorf("two-factor without the code: %d %v", st, b)
	}
	code := TOTP("JBSWY3DPEHPK3PXP", time.Now())
	if st, b := post(t, s, "signin-flow", `{"username":"ann","password":"pw","token":"`+code+`"}`); st != 200 || b["i"] != s.NativeToken(id) {
		t.Errorf("two-factor with the code: %d %v", st, b)
	}
	// The seventh attempt within the hour.
	st, b = post(t, s, "signin-flow", `{"username":"ann","password":"pw"}`)
	e, _ := b["error"].(map[string]any)
	info, _ := e["info"].(map[string]any)
	if st != 429 || e["code"] != "RATE_LIMIT_EXCEEDED" || info["code"] != "TOO_MANY_AUTHENTICATION_FAILURES" {
		t.Errorf("over the limit: %d %v", st, b)
	}
	if st, _ := post(t, s, "signin", `{"username":"ann","password":"pw"}`); st != 404 {
		t.Errorf("/api/signin on a current Misskey: %d", st)
	}

	old := Start(Config{LegacySignin: true, Captcha: "recaptcha", RateLimits: map[string]RateLimit{"signin": {Max: 10, Duration: time.Hour}}})
	defer old.Close()
	oid := old.AddUser("bea", "pw")
	if st, _ := post(t, old, "signin-flow", `{"username":"bea","password":"pw"}`); st != 404 {
		t.Errorf("/api/signin-flow with LegacySignin: %d", st)
	}
	if st, b := post(t, old, "signin", `{"username":"bea","password":"pw"}`); st != 400 || !strings.Contains(b["message"].(string), "recaptcha-failed") {
		t.Errorf("captcha missing: %d %v", st, b)
	}
	if st, b := post(t, old, "signin", `{"username":"bea","password":"pw","g-recaptcha-response":"x"}`); st != 200 || b["i"] != old.NativeToken(oid) || b["finished"] != nil {
		t.Errorf("older route: %d %v", st, b)
	}
	if _, b := post(t, old, "meta", `{}`); b["enableRecaptcha"] != true || b["enableHcaptcha"] != false {
		t.Errorf("meta: %v", b)
	}
}

// i/move with the native token: refused without the alias; then the Move,
// what AccountMoveService.postMoveProcess carries over for local users
// (followers, blockers, muters, lists), and prohibitMoved afterwards; an
// answer dropped by DropAnswers after the Move was made.
func TestIMove(t *testing.T) {
	s := Start(Config{})
	defer s.Close()
	oldID, newID := s.AddUser("old", "pw"), s.AddUser("new", "pw")
	fan, blocker, muter := s.AddUser("fan", "pw"), s.AddUser("blocker", "pw"), s.AddUser("muter", "pw")
	native, fanTok := s.AddToken(oldID, nil), s.AddToken(fan, nil)
	for ep, who := range map[string]string{"following/create": fan, "blocking/create": blocker, "mute/create": muter} {
		if st, b := post(t, s, ep, `{"i":"`+s.AddToken(who, nil)+`","userId":"`+oldID+`"}`); st != 200 && st != 204 {
			t.Fatalf("%s: %d %v", ep, st, b)
		}
	}
	_, list := post(t, s, "users/lists/create", `{"i":"`+fanTok+`","name":"l"}`)
	post(t, s, "users/lists/push", `{"i":"`+fanTok+`","listId":"`+list["id"].(string)+`","userId":"`+oldID+`"}`)

	move := `{"i":"` + native + `","moveToAccount":"new@` + s.Host + `"}`
	if st, b := post(t, s, "i/move", move); st != 400 || errCode(b) != "DESTINATION_ACCOUNT_FORBIDS" {
		t.Fatalf("without the alias: %d %v", st, b)
	}
	post(t, s, "i/update", `{"i":"`+s.AddToken(newID, nil)+`","alsoKnownAs":["old@`+s.Host+`"]}`)
	s.DropAnswers("i/move", 1)
	resp, err := http.Post(s.URL+"/api/i/move", "application/json", strings.NewReader(move))
	if err == nil {
		resp.Body.Close()
		t.Fatal("the dropped answer arrived")
	}
	s.mu.Lock()
	moved := s.users[oldID].MovedTo
	carried := s.edge("following", fan, newID) != nil && s.edge("blocking", blocker, newID) != nil && s.edge("mute", muter, newID) != nil
	inList := strings.Contains(strings.Join(s.lists[list["id"].(string)].Members, ","), newID)
	s.mu.Unlock()
	if moved != newID || !carried || !inList {
		t.Fatalf("after the Move: movedTo %q, carried %v, in the list %v", moved, carried, inList)
	}
	if st, b := post(t, s, "i/move", move); st != 403 || errCode(b) != "YOUR_ACCOUNT_MOVED" {
		t.Errorf("a second Move: %d %v", st, b)
	}
}
