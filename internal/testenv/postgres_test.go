package testenv

import (
	"testing"

	"github.com/jackc/pgx/v5"
)

// TestPostgres starts the shared server and checks that two databases it hands out are
// separate.
func TestPostgres(t *testing.T) {
	a, b := PostgresDB(t), PostgresDB(t)
	if a == b {
		t.Fatalf("two tests got the same database %s", a)
	}
	ctx := t.Context()
	c, err := pgx.Connect(ctx, a)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close(ctx)
	if _, err := c.Exec(ctx, "CREATE TABLE t (x int)"); err != nil {
		t.Fatal(err)
	}
	c2, err := pgx.Connect(ctx, b)
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close(ctx)
	var n int
	if err := c2.QueryRow(ctx, "SELECT count(*) FROM pg_tables WHERE tablename = 't'").Scan(&n); err != nil || n != 0 {
		t.Fatalf("database %s sees the other's table: n=%d err=%v", b, n, err)
	}
}
