package chaos

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	amqp "github.com/rabbitmq/amqp091-go"
	"github.com/redis/go-redis/v9"

	"github.com/productd/productd/broker"
	"github.com/productd/productd/cache"
	"github.com/productd/productd/db"
	"github.com/productd/productd/internal/sandbox"
	"github.com/productd/productd/storage"
)

// imageSweepAfter is the fleet's IMAGE_SWEEP_AFTER.
const imageSweepAfter = 3 * time.Minute

// uploadSweepAfter is the fleet's UPLOAD_SWEEP_AFTER.
const uploadSweepAfter = 2 * time.Minute

// deployment is one scenario's productd: a database, a vhost, a bucket and a
// cache prefix of its own on the run's services, a proxy in front of the
// broker for every process (on a single node), and the fleet.
type deployment struct {
	name    string
	svc     *services
	vhost   string
	logDir  string
	nodes   []*sandbox.RabbitNode
	proxies map[string]*sandbox.Proxy
	fleet   *fleet

	// What the suite itself reads, beside productd.
	pool   *pgxpool.Pool
	store  *storage.Store
	redis  *redis.Client
	prefix string
	topo   broker.Topology
}

// newDeployment prepares everything a scenario's fleet needs and starts
// the fleet.
func newDeployment(ctx context.Context, svc *services, name string, nodes []*sandbox.RabbitNode, binary string) (*deployment, error) {
	d := &deployment{name: name, svc: svc, vhost: "chaos-" + name, nodes: nodes, proxies: map[string]*sandbox.Proxy{}, prefix: "chaos:" + name + ":"}
	var err error
	if d.logDir, err = svc.dir.Sub(filepath.Join("scenarios", name)); err != nil {
		return nil, err
	}
	if d.topo, err = (broker.Topology{}).Resolve(); err != nil {
		return nil, err
	}
	dbName := "productd_" + strings.ReplaceAll(name, "-", "_")
	dbURL, err := svc.pg.CreateDatabase(ctx, dbName, templateDB)
	if err != nil {
		return nil, err
	}
	if d.pool, err = db.Open(ctx, dbURL); err != nil {
		return nil, err
	}
	if err := nodes[0].AddVhost(ctx, d.vhost); err != nil {
		return nil, err
	}
	s3 := storage.Config{
		Endpoint: svc.minio.Endpoint(), AccessKey: minioUser, SecretKey: minioPassword,
		Bucket: "chaos-" + name, PublicURL: "http://" + svc.minio.Endpoint() + "/chaos-" + name,
	}
	if d.store, err = storage.Open(ctx, s3); err != nil {
		return nil, err
	}
	if d.redis, err = cache.NewClient(svc.redis.URL(), 5*time.Second); err != nil {
		return nil, err
	}

	var amqpURL func(role string) string
	if len(nodes) == 1 {
		for _, r := range roleNames {
			p, err := sandbox.NewProxy(r.name, nodes[0].Addr())
			if err != nil {
				return nil, err
			}
			d.proxies[r.name] = p
		}
		amqpURL = func(role string) string {
			return "amqp://guest:guest@" + d.proxies[role].Addr() + "/" + url.PathEscape(d.vhost)
		}
	} else {
		// Every process knows every node, each starting at another, so that
		// the connections spread over the cluster.
		i := 0
		amqpURL = func(string) string {
			var urls []string
			for j := range nodes {
				urls = append(urls, d.nodeURL((i+j)%len(nodes)))
			}
			i++
			return strings.Join(urls, ",")
		}
	}
	env := []string{
		"DATABASE_URL=" + dbURL,
		"REDIS_URL=" + svc.redis.URL(),
		"CACHE_PREFIX=" + d.prefix,
		"S3_ENDPOINT=" + s3.Endpoint, "S3_ACCESS_KEY=" + s3.AccessKey, "S3_SECRET_KEY=" + s3.SecretKey,
		"S3_BUCKET=" + s3.Bucket, "S3_PUBLIC_URL=" + s3.PublicURL,
		"IMAGE_FETCH_ALLOW=" + svc.images.Addr(),
		"LOG_FORMAT=json", "LOG_LEVEL=info",
		"SHUTDOWN_TIMEOUT=10s",
		// Images whose message went with a deleted queue are found by the
		// image sweep: after minutes here, not the production hour.
		"IMAGE_SWEEP_AFTER=" + imageSweepAfter.String(),
		// An upload whose create failed while Postgres was away, and whose
		// removal at once failed with it, is the uploads sweep's: after a
		// couple of minutes here, not the production hour.
		"UPLOAD_SWEEP_AFTER=" + uploadSweepAfter.String(),
	}
	if d.fleet, err = newFleet(svc.dir, binary, d.logDir, svc.dir.Env(env...), amqpURL); err != nil {
		return nil, err
	}
	if err := d.fleet.start(ctx); err != nil {
		return nil, err
	}
	return d, nil
}

// nodeURL is the AMQP URL of the scenario's vhost on its i-th node, direct.
func (d *deployment) nodeURL(i int) string {
	u, _ := url.Parse(d.nodes[i].URL(""))
	u.Path = "/" + d.vhost
	return u.String()
}

// apiURL is the base URL of the fleet's API.
func (d *deployment) apiURL() string { return "http://" + d.fleet.role("api").addr }

// close stops the fleet and the proxies and lets go of the suite's clients.
// The services and the scenario's data stay until the run ends.
func (d *deployment) close() error {
	var err error
	if d.fleet != nil {
		err = d.fleet.stop(15 * time.Second)
	}
	for _, p := range d.proxies {
		p.Close()
	}
	if d.pool != nil {
		d.pool.Close()
	}
	if d.redis != nil {
		_ = d.redis.Close()
	}
	return err
}

// liveNode returns a node that answers, for the suite's own questions.
func (d *deployment) liveNode(ctx context.Context) (*sandbox.RabbitNode, error) {
	var errs []error
	for _, n := range d.nodes {
		if _, err := n.Ctl(ctx, "ping"); err == nil {
			return n, nil
		} else {
			errs = append(errs, err)
		}
	}
	return nil, fmt.Errorf("no node answers: %w", errors.Join(errs...))
}

// queueDepths returns the messages (ready and unacknowledged) of every
// queue of the scenario's vhost.
func (d *deployment) queueDepths(ctx context.Context) (map[string]int, error) {
	n, err := d.liveNode(ctx)
	if err != nil {
		return nil, err
	}
	out, err := n.Ctl(ctx, "list_queues", "-p", d.vhost, "name", "messages", "--formatter", "json")
	if err != nil {
		return nil, err
	}
	var queues []struct {
		Name     string `json:"name"`
		Messages int    `json:"messages"`
	}
	if err := json.Unmarshal([]byte(out), &queues); err != nil {
		return nil, fmt.Errorf("read list_queues: %w: %s", err, out)
	}
	depths := map[string]int{}
	for _, q := range queues {
		depths[q.Name] = q.Messages
	}
	return depths, nil
}

// deleteQueue deletes a queue of the scenario's vhost, messages and all, as
// an operator's mistake would.
func (d *deployment) deleteQueue(queue string) error {
	conn, err := amqp.Dial(d.nodeURL(0))
	if err != nil {
		return fmt.Errorf("delete queue %s: %w", queue, err)
	}
	defer conn.Close()
	ch, err := conn.Channel()
	if err != nil {
		return fmt.Errorf("delete queue %s: %w", queue, err)
	}
	if _, err := ch.QueueDelete(queue, false, false, false); err != nil {
		return fmt.Errorf("delete queue %s: %w", queue, err)
	}
	return nil
}

// keepLogs copies the fleet's logs to dir/<scenario>/.
func (d *deployment) keepLogs(dir string) error {
	if dir == "" {
		return nil
	}
	dst := filepath.Join(dir, d.name)
	if err := os.MkdirAll(dst, 0o755); err != nil {
		return fmt.Errorf("keep logs: %w", err)
	}
	entries, err := os.ReadDir(d.logDir)
	if err != nil {
		return fmt.Errorf("keep logs: %w", err)
	}
	for _, e := range entries {
		b, err := os.ReadFile(filepath.Join(d.logDir, e.Name()))
		if err == nil {
			err = os.WriteFile(filepath.Join(dst, e.Name()), b, 0o644)
		}
		if err != nil {
			return fmt.Errorf("keep logs: %w", err)
		}
	}
	return nil
}
