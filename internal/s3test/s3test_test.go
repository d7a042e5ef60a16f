package s3test

import (
	"context"
	"fmt"
	"os/exec"
	"strings"
	"testing"

	"github.com/minio/minio-go/v7"

	"github.com/productd/productd/internal/failtest"
)

// The buckets of a test process that died go on the next reap, whatever
// they hold; those of a process that runs stay.
func TestReapRemovesTheBucketsOfDeadProcesses(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	alive := Config(t)
	client := adminClient(t, alive)
	cmd := exec.Command("true")
	if err := cmd.Run(); err != nil {
		t.Fatal(err)
	}
	dead := fmt.Sprintf("%s%d-%s", bucketPrefix, cmd.Process.Pid, randomHex(t, 8))
	if err := client.MakeBucket(ctx, dead, minio.MakeBucketOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = removeBucket(context.Background(), client, dead) })
	if _, err := client.PutObject(ctx, dead, "left/behind.jpg", strings.NewReader("x"), 1, minio.PutObjectOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := reap(ctx, client); err != nil {
		t.Fatal(err)
	}
	for bucket, want := range map[string]bool{dead: false, alive.Bucket: true} {
		if there, err := client.BucketExists(ctx, bucket); err != nil || there != want {
			t.Errorf("bucket %s there after the reap: %v (%v), want %v", bucket, there, err, want)
		}
	}
}

// Without MinIO, a test fails with the command that starts it; a URL that
// does not answer fails Status.
func TestMinIOAwaySaysHowToStartIt(t *testing.T) {
	t.Setenv("TEST_S3_ENDPOINT", "127.0.0.1:1")
	if msg := failtest.Failures(t, func(tb testing.TB) { Config(tb) }); !strings.Contains(msg, "run `scripts/services up`") {
		t.Errorf("Config with MinIO away failed with %q, want the command that starts it", msg)
	}
	if msg := failtest.Failures(t, func(tb testing.TB) { Status(tb, "http://127.0.0.1:1/x") }); !strings.Contains(msg, "GET http://127.0.0.1:1/x") {
		t.Errorf("Status of a URL that does not answer failed with %q, want the GET named", msg)
	}
}
