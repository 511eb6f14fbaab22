package main

import (
	"fmt"
	"strings"
	"testing"
)

// TestConfigPrintsNoPassword: %v, %+v, %s and %#v of a Config mask the database password
// in every form (they printed it).
func TestConfigPrintsNoPassword(t *testing.T) {
	t.Parallel()
	for _, raw := range []string{
		"postgres://game:pa,ss-w0rd@db/world?sslpassword=k3y-pa55",
		"host=db user=game password='pa,ss w0rd' sslpassword=k3y-pa55",
	} {
		cfg := Config{DatabaseURL: raw}
		for _, verb := range []string{"%v", "%+v", "%s", "%#v"} {
			if out := fmt.Sprintf(verb, cfg); strings.Contains(out, "pa,ss") || strings.Contains(out, "k3y") || !strings.Contains(out, "db") {
				t.Errorf("%s of %q: %s", verb, raw, out)
			}
		}
	}
}
