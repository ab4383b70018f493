package testenv

import (
	"context"
	"database/sql"
	"fmt"
	"path/filepath"

	_ "modernc.org/sqlite" // the PDS's own SQLite files
)

// EmailToken reads, from the PDS's own account database, the code it
// emailed to the account did for purpose ("plc_operation" for
// com.atproto.identity.requestPlcOperationSignature). The test PDS sends
// no mail; a test reads the code as a person would read the email. Only
// tests do this: ferry asks the person.
func (s *PDS) EmailToken(ctx context.Context, did, purpose string) (string, error) {
	db, err := sql.Open("sqlite", "file:"+filepath.Join(s.DataDir, "account.sqlite")+"?mode=ro&_pragma=busy_timeout(5000)")
	if err != nil {
		return "", err
	}
	defer db.Close()
	var tok string
	err = db.QueryRowContext(ctx, `SELECT token FROM email_token WHERE did = ? AND purpose = ?`, did, purpose).Scan(&tok)
	if err != nil {
		return "", fmt.Errorf("testenv: the %s code of %s: %w", purpose, did, err)
	}
	return tok, nil
}
