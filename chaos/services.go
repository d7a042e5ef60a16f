package chaos

import (
	"context"
	"fmt"
	"os/exec"

	"github.com/productd/productd/internal/sandbox"
	"github.com/productd/productd/loadgen"
)

// S3 credentials of the private MinIO.
const (
	minioUser     = "chaosadmin"
	minioPassword = "chaos-secret"
)

// templateDB is the migrated database every scenario's database copies.
const templateDB = "productd_template"

// services are the private services of a run, shared by its scenarios:
// each scenario gets a database, a vhost, a bucket and a cache prefix of
// its own on them.
type services struct {
	dir    *sandbox.Dir
	runID  string
	pg     *sandbox.Postgres
	redis  *sandbox.Redis
	minio  *sandbox.MinIO
	node   *sandbox.RabbitNode
	images *loadgen.ImageServer
	// cluster is the three-node cluster, once a scenario needed it.
	cluster []*sandbox.RabbitNode
}

// startServices starts Postgres (with the migrated template), Redis,
// MinIO, one RabbitMQ node and the image server.
func startServices(ctx context.Context, dir *sandbox.Dir, binary, runID string) (*services, error) {
	s := &services{dir: dir, runID: runID}
	var err error
	if s.pg, err = dir.StartPostgres(ctx); err != nil {
		return nil, err
	}
	url, err := s.pg.CreateDatabase(ctx, templateDB, "")
	if err != nil {
		return nil, err
	}
	migrate := exec.CommandContext(ctx, binary, "migrate", "up")
	migrate.Env = dir.Env("DATABASE_URL="+url, "LOG_FORMAT=text")
	if out, err := migrate.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("migrate the template database: %w\n%s", err, out)
	}
	if s.redis, err = dir.StartRedis(ctx); err != nil {
		return nil, err
	}
	if s.minio, err = dir.StartMinIO(ctx, minioUser, minioPassword); err != nil {
		return nil, err
	}
	if s.node, err = dir.StartRabbitNode(ctx, "chaos"+runID); err != nil {
		return nil, err
	}
	if s.images, err = loadgen.NewImageServer(""); err != nil {
		return nil, err
	}
	return s, nil
}

// startCluster starts three more nodes and clusters them, stopping the
// single node, which no scenario needs after this.
func (s *services) startCluster(ctx context.Context) ([]*sandbox.RabbitNode, error) {
	if s.cluster != nil {
		return s.cluster, nil
	}
	if err := s.node.Stop(ctx); err != nil {
		return nil, err
	}
	var nodes []*sandbox.RabbitNode
	for i := range 3 {
		n, err := s.dir.StartRabbitNode(ctx, fmt.Sprintf("chaos%s-%d", s.runID, i+1))
		if err != nil {
			return nil, err
		}
		nodes = append(nodes, n)
	}
	for _, n := range nodes[1:] {
		if err := n.JoinCluster(ctx, nodes[0]); err != nil {
			return nil, err
		}
	}
	s.cluster = nodes
	return nodes, nil
}

func (s *services) close() {
	if s.images != nil {
		_ = s.images.Close()
	}
}
