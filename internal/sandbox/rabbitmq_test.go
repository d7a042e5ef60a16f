package sandbox

import (
	"context"
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
)

// nodeName is unique on the machine: nodes of every test binary share epmd.
func nodeName(t *testing.T, n int) string {
	return fmt.Sprintf("sandboxtest%d-%d-%d", os.Getpid(), time.Now().UnixNano()%1e6, n)
}

func dial(t *testing.T, url string) *amqp.Connection {
	t.Helper()
	conn, err := amqp.DialConfig(url, amqp.Config{Dial: amqp.DefaultDial(5 * time.Second)})
	if err != nil {
		t.Fatalf("connect to %s: %v", url, err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	return conn
}

// awaitClosed waits for the broker to close conn.
func awaitClosed(t *testing.T, conn *amqp.Connection, why string) {
	t.Helper()
	select {
	case <-conn.NotifyClose(make(chan *amqp.Error, 1)):
	case <-time.After(time.Minute):
		t.Fatalf("%s left a connection open", why)
	}
}

func TestRabbitNodeOutagesAndConnectionsClosed(t *testing.T) {
	t.Parallel()
	ctx := testContext(t)
	d := open(t)
	n, err := d.StartRabbitNode(ctx, nodeName(t, 1))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasSuffix(n.Name(), "@localhost") {
		t.Errorf("node name %q", n.Name())
	}
	if err := n.AddVhost(ctx, "v1"); err != nil {
		t.Fatal(err)
	}
	conn := dial(t, n.URL("v1"))
	if err := n.CloseAllConnections(ctx, "sandbox test"); err != nil {
		t.Fatal(err)
	}
	awaitClosed(t, conn, "close_all_connections")

	conn = dial(t, n.URL("v1"))
	if err := n.StopApp(ctx); err != nil {
		t.Fatal(err)
	}
	awaitClosed(t, conn, "stop_app")
	if _, err := amqp.Dial(n.URL("v1")); err == nil {
		t.Fatal("the node accepts connections with its application stopped")
	}
	if err := n.StartApp(ctx); err != nil {
		t.Fatal(err)
	}
	dial(t, n.URL("v1"))

	if err := n.Restart(ctx); err == nil {
		t.Error("a running node was restarted")
	}
	if _, err := n.Ctl(ctx, "no_such_command"); err == nil {
		t.Error("a bad rabbitmqctl command succeeded")
	}
	if err := n.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	if err := n.Stop(ctx); err != nil {
		t.Errorf("stopping a stopped node: %v", err)
	}
}

// Three private nodes make a cluster whose quorum queue survives the loss
// of its leader: another node leads, the messages are all there, and the
// killed node rejoins when it restarts.
func TestRabbitClusterLosesItsQueueLeader(t *testing.T) {
	t.Parallel()
	ctx := testContext(t)
	d := open(t)
	var nodes []*RabbitNode
	for i := range 3 {
		n, err := d.StartRabbitNode(ctx, nodeName(t, i))
		if err != nil {
			t.Fatal(err)
		}
		nodes = append(nodes, n)
	}
	for _, n := range nodes[1:] {
		if err := n.JoinCluster(ctx, nodes[0]); err != nil {
			t.Fatal(err)
		}
	}
	ch, err := dial(t, nodes[0].URL("")).Channel()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ch.QueueDeclare("q", true, false, false, false, amqp.Table{amqp.QueueTypeArg: amqp.QueueTypeQuorum}); err != nil {
		t.Fatal(err)
	}
	if err := ch.Confirm(false); err != nil {
		t.Fatal(err)
	}
	for i := range 10 {
		c, err := ch.PublishWithDeferredConfirmWithContext(ctx, "", "q", false, false, amqp.Publishing{Body: []byte{byte(i)}, DeliveryMode: amqp.Persistent})
		if err != nil {
			t.Fatal(err)
		}
		if ok, err := c.WaitContext(ctx); !ok || err != nil {
			t.Fatalf("publish %d: %v %v", i, ok, err)
		}
	}
	leader, err := nodes[1].QueueLeader(ctx, "/", "q")
	if err != nil {
		t.Fatal(err)
	}
	i := slices.IndexFunc(nodes, func(n *RabbitNode) bool { return n.Name() == leader })
	if i < 0 {
		t.Fatalf("leader %q is none of the cluster's nodes", leader)
	}
	if err := nodes[i].Kill(); err != nil {
		t.Fatal(err)
	}
	survivor := nodes[(i+1)%3]
	var next string
	deadline := time.Now().Add(time.Minute)
	for next == "" || next == leader {
		if time.Now().After(deadline) {
			t.Fatalf("no new leader after the leader %s died: %q, %v", leader, next, err)
		}
		next, err = survivor.QueueLeader(ctx, "/", "q")
		time.Sleep(200 * time.Millisecond)
	}
	sch, err := dial(t, survivor.URL("")).Channel()
	if err != nil {
		t.Fatal(err)
	}
	q, err := sch.QueueDeclarePassive("q", true, false, false, false, amqp.Table{amqp.QueueTypeArg: amqp.QueueTypeQuorum})
	if err != nil || q.Messages != 10 {
		t.Fatalf("after the leader died the queue holds %d messages (%v), want 10", q.Messages, err)
	}
	if err := nodes[i].Restart(ctx); err != nil {
		t.Fatal(err)
	}
	out, err := nodes[i].Ctl(ctx, "cluster_status", "--formatter", "json")
	if err != nil || strings.Count(out, "sandboxtest") < 3 {
		t.Errorf("the restarted node's cluster: %s %v", out, err)
	}
	if _, err := survivor.QueueLeader(context.Background(), "/", "missing"); err == nil {
		t.Error("a missing queue has a leader")
	}
}
