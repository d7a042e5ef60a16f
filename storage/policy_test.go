package storage

import (
	"encoding/json"
	"os/exec"
	"reflect"
	"testing"
)

// scripts/services sets up the development bucket with the read policy
// EnsureBucket sets: public reads under the two public prefixes, nothing
// wider.
func TestScriptsServicesSetsTheSameReadPolicy(t *testing.T) {
	t.Parallel()
	out, err := exec.Command("bash", "../scripts/services", "policy", "some-bucket").Output()
	if err != nil {
		t.Fatalf("scripts/services policy: %v", err)
	}
	var script, ours any
	if err := json.Unmarshal(out, &script); err != nil {
		t.Fatalf("scripts/services policy printed %q: %v", out, err)
	}
	if err := json.Unmarshal([]byte(readPolicy("some-bucket")), &ours); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(script, ours) {
		t.Errorf("scripts/services sets\n%s\nstorage sets\n%s", out, readPolicy("some-bucket"))
	}
}
