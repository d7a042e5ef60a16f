package sandbox

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"time"
)

// MinIO is a private MinIO server: its own data directory and ports.
type MinIO struct {
	d         *Dir
	bin       string
	dir       string
	port      int
	console   int
	accessKey string
	secretKey string
	proc      *Process
}

// MinIOBinary finds the MinIO server: on PATH, or where scripts/services
// builds it (~/.cache/productd/bin, under XDG_CACHE_HOME when set).
func MinIOBinary() (string, error) {
	if path, err := exec.LookPath("minio"); err == nil {
		return path, nil
	}
	cache := os.Getenv("XDG_CACHE_HOME")
	if cache == "" {
		home, err := os.UserHomeDir()
		if err != nil {
			return "", fmt.Errorf("minio: %w", err)
		}
		cache = filepath.Join(home, ".cache")
	}
	path := filepath.Join(cache, "productd", "bin", "minio")
	if _, err := os.Stat(path); err != nil {
		return "", fmt.Errorf("minio: no minio on PATH nor at %s (run scripts/services up, which builds it)", path)
	}
	return path, nil
}

// StartMinIO starts a MinIO server with the given root credentials.
func (d *Dir) StartMinIO(ctx context.Context, accessKey, secretKey string) (*MinIO, error) {
	bin, err := MinIOBinary()
	if err != nil {
		return nil, err
	}
	dir, err := d.Sub("minio")
	if err != nil {
		return nil, err
	}
	m := &MinIO{d: d, bin: bin, dir: dir, accessKey: accessKey, secretKey: secretKey}
	if m.port, err = FreePort(); err != nil {
		return nil, err
	}
	if m.console, err = FreePort(); err != nil {
		return nil, err
	}
	d.onClose(func(context.Context) error { return m.Stop() })
	if err := m.Start(ctx); err != nil {
		return nil, err
	}
	d.log.WithField("port", m.port).Info("sandbox: minio started")
	return m, nil
}

// Endpoint is the S3 API's host:port.
func (m *MinIO) Endpoint() string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(m.port)) }

// Start starts the server (again, after Stop) with its data and waits until
// it reports itself live.
func (m *MinIO) Start(ctx context.Context) error {
	cmd := exec.Command(m.bin, "server", filepath.Join(m.dir, "data"), "--quiet",
		"--address", m.Endpoint(), "--console-address", net.JoinHostPort("127.0.0.1", strconv.Itoa(m.console)))
	cmd.Env = append(os.Environ(), "MINIO_ROOT_USER="+m.accessKey, "MINIO_ROOT_PASSWORD="+m.secretKey,
		"MINIO_BROWSER=off", "MINIO_UPDATE=off")
	p, err := m.d.Start("minio", filepath.Join(m.dir, "minio.log"), cmd)
	if err != nil {
		return err
	}
	m.proc = p
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	client := &http.Client{Timeout: 2 * time.Second}
	err = await(ctx, "minio to answer", func() error {
		if done, err := p.Exited(); done {
			return errors.Join(errExited, err)
		}
		resp, err := client.Get("http://" + m.Endpoint() + "/minio/health/live")
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("health: %s", resp.Status)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("minio: %w\n%s", err, Tail(p.Log(), 10))
	}
	return nil
}

// Stop kills the server; its data stays for the next Start. Stopping a
// stopped server is no error.
func (m *MinIO) Stop() error {
	if m.proc == nil {
		return nil
	}
	return m.proc.Kill()
}
