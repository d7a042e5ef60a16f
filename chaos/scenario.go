package chaos

import (
	"context"
	"fmt"
	"sync"
	"time"
)

// Scenario is one fault the suite puts a deployment through under load.
type Scenario struct {
	// Name names the scenario in the table, and its database, vhost and
	// bucket.
	Name string
	// Title says what happens, for the table.
	Title string
	// Cluster runs the scenario against a three-node RabbitMQ cluster with
	// the work queue replicated over it, instead of a single node.
	Cluster bool
	// Fault takes something away and gives it back; it returns once the
	// deployment has everything again. It marks the fault's window with
	// stage.down and stage.up.
	Fault func(ctx context.Context, s *stage) error
}

// stage is what a fault works on.
type stage struct {
	*deployment
	outage time.Duration
	say    func(format string, args ...any)

	mu     sync.Mutex
	downAt time.Time
	upAt   time.Time
}

// down marks the moment the fault begins.
func (s *stage) down(what string) {
	s.mu.Lock()
	s.downAt = time.Now()
	s.mu.Unlock()
	s.say("fault: %s", what)
}

// up marks the moment everything is back.
func (s *stage) up(what string) {
	s.mu.Lock()
	s.upAt = time.Now()
	s.mu.Unlock()
	s.say("restored: %s", what)
}

// window returns the fault's window.
func (s *stage) window() (time.Time, time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.downAt, s.upAt
}

// hold waits out the outage: its length is the scenario, not a condition.
func (s *stage) hold(ctx context.Context, d time.Duration) error {
	select {
	case <-time.After(d):
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Scenarios are every scenario of the full suite, in the order it runs
// them; the cluster comes last, since it replaces the single node.
func Scenarios() []Scenario {
	return []Scenario{
		{Name: "broker-stopped", Title: "RabbitMQ stopped (stop_app), then started", Fault: brokerStopped},
		{Name: "connections-closed", Title: "every broker connection closed, twice", Fault: connectionsClosed},
		{Name: "queue-deleted", Title: "the work queue deleted while everything runs", Fault: queueDeleted},
		{Name: "network-blackholed", Title: "the network to the broker black-holed, then slowed (toxiproxy)", Fault: networkBlackholed},
		{Name: "worker-killed", Title: "a worker SIGKILLed mid-image, then restarted", Fault: workerKilled},
		{Name: "relay-killed", Title: "a relay SIGKILLed mid-batch, then restarted", Fault: relayKilled},
		{Name: "minio-stopped", Title: "MinIO stopped, then started", Fault: minioStopped},
		{Name: "redis-stopped", Title: "Redis stopped, then started empty", Fault: redisStopped},
		{Name: "postgres-restarted", Title: "Postgres restarted (pg_ctl restart -m fast)", Fault: postgresRestarted},
		{Name: "cluster-leader-killed", Title: "3-node RabbitMQ cluster: the work queue's leader node SIGKILLed, later restarted", Cluster: true, Fault: clusterLeaderKilled},
	}
}

// ShortScenarios are the scenarios of the short suite CI runs.
var ShortScenarios = []string{"broker-stopped", "worker-killed"}

func brokerStopped(ctx context.Context, s *stage) error {
	node := s.nodes[0]
	return s.takeAway(ctx, fmt.Sprintf("rabbitmqctl stop_app for %s", s.outage), func() error { return node.StopApp(ctx) },
		"rabbitmqctl start_app", func() error { return node.StartApp(ctx) })
}

// takeAway runs stop, waits out the outage, and runs start, marking the
// fault's window with what and restored.
func (s *stage) takeAway(ctx context.Context, what string, stop func() error, restored string, start func() error) error {
	s.down(what)
	if err := stop(); err != nil {
		return err
	}
	if err := s.hold(ctx, s.outage); err != nil {
		return err
	}
	if err := start(); err != nil {
		return err
	}
	s.up(restored)
	return nil
}

func connectionsClosed(ctx context.Context, s *stage) error {
	s.down("rabbitmqctl close_all_connections")
	for i := range 2 {
		if err := s.nodes[0].CloseAllConnections(ctx, "chaos"); err != nil {
			return err
		}
		if i == 0 {
			if err := s.hold(ctx, 5*time.Second); err != nil {
				return err
			}
		}
	}
	s.up("connections closed twice, five seconds apart")
	return nil
}

func queueDeleted(ctx context.Context, s *stage) error {
	s.down("delete queue " + s.topo.WorkQueue)
	if err := s.deleteQueue(s.topo.WorkQueue); err != nil {
		return err
	}
	s.up("queue deleted")
	return nil
}

func networkBlackholed(ctx context.Context, s *stage) error {
	// Both ways, longer than two heartbeats (20 s): the processes must find
	// their connections dead by themselves, as must the broker.
	s.down(fmt.Sprintf("every process's link to the broker black-holed both ways for %s", s.outage))
	for _, p := range s.proxies {
		if err := p.Blackhole("blackhole"); err != nil {
			return err
		}
		if err := p.AddToxic(`{"name":"blackhole-up","type":"timeout","stream":"upstream","attributes":{"timeout":0}}`); err != nil {
			return err
		}
	}
	if err := s.hold(ctx, s.outage); err != nil {
		return err
	}
	for _, p := range s.proxies {
		for _, toxic := range []string{"blackhole", "blackhole-up"} {
			if err := p.RemoveToxic(toxic); err != nil {
				return err
			}
		}
		if err := p.AddLatency("slow", 1000); err != nil {
			return err
		}
	}
	s.say("fault: the black hole lifted; every link to the broker 1 s slow for %s", s.outage/2)
	if err := s.hold(ctx, s.outage/2); err != nil {
		return err
	}
	for _, p := range s.proxies {
		if err := p.RemoveToxic("slow"); err != nil {
			return err
		}
	}
	s.up("the links are fast again")
	return nil
}

func workerKilled(ctx context.Context, s *stage) error {
	w := s.fleet.role("worker-1")
	// Every image request waits: the first one worker-1 makes catches it in
	// the middle of an image.
	s.svc.images.Hold()
	defer s.svc.images.Release()
	err := awaitCondition(ctx, time.Minute, "worker-1 to fetch an image", func() (bool, error) {
		ports, err := localPorts(w.process().Pid())
		if err != nil {
			return false, err
		}
		for _, addr := range s.svc.images.InFlight() {
			if ports[portOf(addr)] {
				return true, nil
			}
		}
		return false, nil
	})
	if err != nil {
		return err
	}
	s.down("SIGKILL worker-1 while it fetches an image")
	if err := w.kill(); err != nil {
		return err
	}
	s.svc.images.Release()
	if err := s.fleet.startRole(ctx, w); err != nil {
		return err
	}
	s.up("worker-1 restarted")
	return nil
}

func relayKilled(ctx context.Context, s *stage) error {
	r := s.fleet.role("relay-1")
	// Confirms to relay-1 come late: a batch it claims stays open long
	// enough to be caught.
	proxy := s.proxies["relay-1"]
	if err := proxy.AddLatency("slow-confirms", 3000); err != nil {
		return err
	}
	removed := false
	defer func() {
		if !removed {
			_ = proxy.RemoveToxic("slow-confirms")
		}
	}()
	err := awaitCondition(ctx, 2*time.Minute, "relay-1 to hold a batch", func() (bool, error) {
		ports, err := localPorts(r.process().Pid())
		if err != nil {
			return false, err
		}
		rows, err := s.pool.Query(ctx, `
			SELECT client_port FROM pg_stat_activity
			WHERE datname = current_database() AND backend_xid IS NOT NULL AND query ILIKE '%outbox%'`)
		if err != nil {
			return false, err
		}
		defer rows.Close()
		for rows.Next() {
			var port int
			if err := rows.Scan(&port); err != nil {
				return false, err
			}
			if ports[port] {
				return true, nil
			}
		}
		return false, rows.Err()
	})
	if err != nil {
		return err
	}
	s.down("SIGKILL relay-1 with a claimed batch not yet committed")
	if err := r.kill(); err != nil {
		return err
	}
	if err := proxy.RemoveToxic("slow-confirms"); err != nil {
		return err
	}
	removed = true
	if err := s.fleet.startRole(ctx, r); err != nil {
		return err
	}
	s.up("relay-1 restarted")
	return nil
}

func minioStopped(ctx context.Context, s *stage) error {
	m := s.svc.minio
	return s.takeAway(ctx, fmt.Sprintf("MinIO killed for %s", s.outage), m.Stop,
		"MinIO started with its data", func() error { return m.Start(ctx) })
}

func redisStopped(ctx context.Context, s *stage) error {
	r := s.svc.redis
	return s.takeAway(ctx, fmt.Sprintf("Redis killed for %s", s.outage), r.Stop,
		"Redis started, empty", func() error { return r.Start(ctx) })
}

func postgresRestarted(ctx context.Context, s *stage) error {
	s.down("pg_ctl restart -m fast")
	if err := s.svc.pg.Restart(ctx); err != nil {
		return err
	}
	s.up("Postgres accepts connections again")
	return nil
}

func clusterLeaderKilled(ctx context.Context, s *stage) error {
	n, err := s.liveNode(ctx)
	if err != nil {
		return err
	}
	leader, err := n.QueueLeader(ctx, s.vhost, s.topo.WorkQueue)
	if err != nil {
		return err
	}
	for _, node := range s.nodes {
		if node.Name() != leader {
			continue
		}
		return s.takeAway(ctx, fmt.Sprintf("SIGKILL %s, the leader of %s, for %s", leader, s.topo.WorkQueue, s.outage), node.Kill,
			leader+" restarted and rejoined", func() error { return node.Restart(ctx) })
	}
	return fmt.Errorf("the leader %q of %s is none of the cluster's nodes", leader, s.topo.WorkQueue)
}

// awaitCondition polls cond every 20 ms until it holds, fails, or limit
// passes.
func awaitCondition(ctx context.Context, limit time.Duration, what string, cond func() (bool, error)) error {
	deadline := time.Now().Add(limit)
	for {
		ok, err := cond()
		if err != nil {
			return fmt.Errorf("wait for %s: %w", what, err)
		}
		if ok {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("wait for %s: not within %s", what, limit)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
}
