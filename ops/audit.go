package ops

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/sirupsen/logrus"

	"github.com/productd/productd"
)

// Action is one recorded operator action.
type Action struct {
	ID     int64     `json:"id"`
	At     time.Time `json:"at"`
	Actor  string    `json:"actor"`
	Action string    `json:"action"`
	Target string    `json:"target"`
	Detail string    `json:"detail"`
	Result string    `json:"result"`
}

// record logs an action and keeps it in ops_actions; err is its outcome. A
// failure to record is logged, never hides the action's own result.
func (c *Console) record(ctx context.Context, actor, action, target, detail string, err error, result string) {
	if err != nil {
		result = "failed: " + describe(err)
	}
	entry := c.log.WithFields(logrus.Fields{"actor": actor, "action": action, "target": target, "detail": detail, "result": result})
	if err != nil {
		entry.Warn("ops: action failed")
	} else {
		entry.Info("ops: action")
	}
	_, rerr := c.cfg.Pool.Exec(context.WithoutCancel(ctx),
		`INSERT INTO ops_actions (actor, action, target, detail, result) VALUES ($1, $2, $3, $4, $5)`,
		actor, action, target, detail, result)
	if rerr != nil {
		entry.WithError(rerr).Error("ops: cannot record the action")
	}
}

// Actions returns the newest limit recorded actions, newest first.
func (c *Console) Actions(ctx context.Context, limit int) ([]Action, error) {
	rows, err := c.cfg.Pool.Query(ctx,
		`SELECT id, at, actor, action, target, detail, result FROM ops_actions ORDER BY id DESC LIMIT $1`, limit)
	if err != nil {
		return nil, fmt.Errorf("read ops actions: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (Action, error) {
		var a Action
		return a, row.Scan(&a.ID, &a.At, &a.Actor, &a.Action, &a.Target, &a.Detail, &a.Result)
	})
	if err != nil {
		return nil, fmt.Errorf("read ops actions: %w", err)
	}
	return out, nil
}

// describe is err in words for the record: an application error's message,
// or the whole chain of anything else.
func describe(err error) string {
	if productd.ErrorCode(err) == productd.EINTERNAL {
		return err.Error()
	}
	return productd.ErrorMessage(err)
}
