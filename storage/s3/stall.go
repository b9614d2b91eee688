package s3

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/skiffhq/skiff/storage"
)

// stallClient abandons a request to the store that moves no byte for
// idle: no byte of its body sent, no byte of the answer received. A store
// that accepts a connection and then stops answering would otherwise hold
// the request for ever (the SDK sets no such limit), and with it the
// upload or read that waits for it, the SFTP session, and a shutdown that
// waits for the session. A request that moves bytes, however slowly, goes
// on; a server-side copy, which moves none until the store answers, has
// idle to finish. The SDK's retryer retries a request abandoned so.
type stallClient struct {
	next aws.HTTPClient
	idle time.Duration
}

// errStalled is why a request was abandoned. It is a timeout (net.Error),
// which the SDK retries, and storage.ErrUnavailable once the retries are
// spent.
type errStalled struct{ idle time.Duration }

func (e errStalled) Error() string {
	return fmt.Sprintf("the storage moved no data for %v: request abandoned", e.idle)
}
func (errStalled) Timeout() bool   { return true }
func (errStalled) Temporary() bool { return true }

// Is makes a request abandoned so storage.ErrUnavailable to the SFTP layer.
func (errStalled) Is(target error) bool { return target == storage.ErrUnavailable }

func (c stallClient) Do(req *http.Request) (*http.Response, error) {
	ctx, cancel := context.WithCancelCause(req.Context())
	w := &stallWatch{idle: c.idle, ctx: ctx, cancel: cancel}
	w.touch()
	w.timer = time.AfterFunc(time.Duration(math.MaxInt64), w.check)
	w.timer.Reset(c.idle) // check may run from here on: w.timer is set
	req = req.WithContext(ctx)
	if req.Body != nil && req.Body != http.NoBody {
		req.Body = &watchedBody{ReadCloser: req.Body, w: w}
	}
	if getBody := req.GetBody; getBody != nil { // the body again, for a request resent
		req.GetBody = func() (io.ReadCloser, error) {
			b, err := getBody()
			if err != nil || b == http.NoBody {
				return b, err
			}
			return &watchedBody{ReadCloser: b, w: w}, nil
		}
	}
	resp, err := c.next.Do(req)
	if err != nil {
		err = w.why(err)
		w.stop()
		return nil, err
	}
	resp.Body = &watchedBody{ReadCloser: resp.Body, w: w, ends: true}
	return resp, nil
}

// stallWatch cancels a request once it has moved no byte for idle.
type stallWatch struct {
	idle   time.Duration
	ctx    context.Context
	cancel context.CancelCauseFunc
	timer  *time.Timer
	last   atomic.Int64 // time.Now().UnixNano() of the last byte moved
}

func (w *stallWatch) touch() { w.last.Store(time.Now().UnixNano()) }

// check runs when the timer fires: it cancels the request if nothing moved
// for idle, and waits for the rest of idle otherwise.
func (w *stallWatch) check() {
	since := time.Duration(time.Now().UnixNano() - w.last.Load())
	if since < w.idle {
		w.timer.Reset(w.idle - since)
		return
	}
	w.cancel(errStalled{w.idle})
}

// why returns errStalled for an error caused by the watch's cancelling,
// err itself otherwise.
func (w *stallWatch) why(err error) error {
	var stalled errStalled
	if errors.As(context.Cause(w.ctx), &stalled) {
		return stalled
	}
	return err
}

func (w *stallWatch) stop() {
	w.timer.Stop()
	w.cancel(context.Canceled)
}

// watchedBody is a request's body or its answer's, each byte read through
// it counting as movement; closing the answer ends the watch.
type watchedBody struct {
	io.ReadCloser
	w    *stallWatch
	ends bool // the answer's body: Close ends the request
}

func (b *watchedBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if n > 0 {
		b.w.touch()
	}
	if err != nil && err != io.EOF {
		err = b.w.why(err)
	}
	return n, err
}

func (b *watchedBody) Close() error {
	err := b.ReadCloser.Close()
	if b.ends {
		b.w.stop()
	}
	return err
}
