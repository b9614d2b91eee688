package bench

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync/atomic"
	"time"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
)

// mobileUsersQuery is a phone's users screen: a page of 50 users with what
// a list row shows, the way a generated client writes it (named operation,
// __typename on every object for the normalised cache).
const mobileUsersQuery = `query MobileUsersScreen($first: Int!, $after: String) {
  account {
    __typename
    id
    users(first: $first, after: $after) {
      __typename
      edges {
        __typename
        cursor
        node {
          __typename
          id
          name
          email
          role
          group { __typename id name }
          sftp { __typename enabled }
        }
      }
      pageInfo { __typename endCursor hasNextPage }
    }
  }
}`

// byteCountingConn counts the bytes a client's connection sends and receives:
// request line, headers and body, both ways.
type byteCountingConn struct {
	net.Conn
	sent, received *atomic.Int64
}

func (c byteCountingConn) Read(b []byte) (int, error) {
	n, err := c.Conn.Read(b)
	c.received.Add(int64(n))
	return n, err
}

func (c byteCountingConn) Write(b []byte) (int, error) {
	n, err := c.Conn.Write(b)
	c.sent.Add(int64(n))
	return n, err
}

// transferVariant is one way a client may ask for the screen.
type transferVariant struct {
	name     string
	apq      bool   // send the hash only (the query was registered before)
	get      bool   // GET with the parameters in the URL (urql, Apollo's useGETForHashedQueries)
	encoding string // Accept-Encoding
}

// transferBytes measures the bytes on the wire, both ways, of the mobile
// users screen: as clients sent it before (POST with the query text, no
// compression) and with persisted queries and compression, against the
// same server in the same run.
func (r *runner) transferBytes(ctx context.Context, apiURL, token string) error {
	const requests, page = 20, 50
	sec := r.report.section(fmt.Sprintf("GraphQL bytes on the wire: a mobile users screen (%d users)", page),
		"request", "sent / request", "received / request", "total / request", "of the plain POST", "p50")
	variants := []transferVariant{
		{name: "POST, query text, no compression (before)"},
		{name: "POST, query text, gzip", encoding: "gzip"},
		{name: "POST, persisted query hash, no compression", apq: true},
		{name: "POST, persisted query hash, gzip", apq: true, encoding: "gzip"},
		{name: "GET, persisted query hash, gzip", apq: true, get: true, encoding: "gzip"},
		{name: "GET, persisted query hash, zstd", apq: true, get: true, encoding: "zstd"},
	}
	var base float64
	var best string
	for i, v := range variants {
		var sent, received atomic.Int64
		dialer := &net.Dialer{}
		client := &http.Client{Transport: &http.Transport{
			DisableCompression: true, // Accept-Encoding is the variant's
			DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
				c, err := dialer.DialContext(ctx, network, addr)
				if err != nil {
					return nil, err
				}
				return byteCountingConn{Conn: c, sent: &sent, received: &received}, nil
			},
		}}
		if v.apq { // the first request registers the query (not counted, as a client's first view)
			if err := mobileScreen(ctx, client, apiURL, token, page, transferVariant{encoding: v.encoding}, true); err != nil {
				return err
			}
		}
		// Open the keep-alive connection outside the count, as an app's is.
		if err := mobileScreen(ctx, client, apiURL, token, page, v, false); err != nil {
			return err
		}
		sent.Store(0)
		received.Store(0)
		var lat []time.Duration
		for range requests {
			start := time.Now()
			if err := mobileScreen(ctx, client, apiURL, token, page, v, false); err != nil {
				return fmt.Errorf("%s: %w", v.name, err)
			}
			lat = append(lat, time.Since(start))
		}
		client.CloseIdleConnections()
		s, rcv := float64(sent.Load())/requests, float64(received.Load())/requests
		if i == 0 {
			base = s + rcv
		}
		share := fmt.Sprintf("%.0f %%", 100*(s+rcv)/base)
		if v.get && v.encoding == "gzip" {
			best = share
		}
		sec.row(v.name, fmt.Sprintf("%.0f B", s), fmt.Sprintf("%.0f B", rcv), fmt.Sprintf("%.0f B", s+rcv), share, ms(percentile(lat, 50)))
	}
	sec.note("Bytes counted on the client's TCP connection (HTTP/1.1 request and status lines, headers and bodies, "+
		"both ways; no TLS), per request, averaged over %d requests on one keep-alive connection, with the owner's "+
		"bearer token. A persisted query's first request, which registers it (hash and text), is not counted: an app "+
		"sends it once per query per server process. Every response is decoded and checked. Persisted query (GET) "+
		"plus gzip transfers %s of the plain POST's bytes.", requests, best)
	return nil
}

// mobileScreen requests the screen as v says and checks the answer; with
// register it sends the hash and the text (a persisted query's first request).
func mobileScreen(ctx context.Context, client *http.Client, apiURL, token string, page int, v transferVariant, register bool) error {
	params := map[string]any{"operationName": "MobileUsersScreen", "variables": map[string]any{"first": page}}
	if !v.apq || register {
		params["query"] = mobileUsersQuery
	}
	if v.apq || register {
		sum := sha256.Sum256([]byte(mobileUsersQuery))
		params["extensions"] = map[string]any{"persistedQuery": map[string]any{"version": 1, "sha256Hash": hex.EncodeToString(sum[:])}}
	}
	var req *http.Request
	var err error
	if v.get {
		q := url.Values{}
		for k, val := range params {
			if s, ok := val.(string); ok {
				q.Set(k, s)
				continue
			}
			b, _ := json.Marshal(val)
			q.Set(k, string(b))
		}
		req, err = http.NewRequestWithContext(ctx, http.MethodGet, apiURL+"/graphql?"+q.Encode(), nil)
	} else {
		b, _ := json.Marshal(params)
		req, err = http.NewRequestWithContext(ctx, http.MethodPost, apiURL+"/graphql", strings.NewReader(string(b)))
		if err == nil {
			req.Header.Set("Content-Type", "application/json")
		}
	}
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+token)
	if v.encoding != "" {
		req.Header.Set("Accept-Encoding", v.encoding)
	}
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	var body io.Reader = resp.Body
	switch enc := resp.Header.Get("Content-Encoding"); enc {
	case "":
	case "gzip":
		zr, err := gzip.NewReader(resp.Body)
		if err != nil {
			return err
		}
		body = zr
	case "zstd":
		zr, err := zstd.NewReader(resp.Body)
		if err != nil {
			return err
		}
		defer zr.Close()
		body = zr
	default:
		return fmt.Errorf("unexpected Content-Encoding %q", enc)
	}
	if v.encoding != "" && resp.Header.Get("Content-Encoding") != v.encoding {
		return fmt.Errorf("asked for %s, got Content-Encoding %q", v.encoding, resp.Header.Get("Content-Encoding"))
	}
	var out struct {
		Errors []json.RawMessage `json:"errors"`
		Data   struct {
			Account struct {
				Users struct {
					Edges []json.RawMessage `json:"edges"`
				} `json:"users"`
			} `json:"account"`
		} `json:"data"`
	}
	if err := json.NewDecoder(body).Decode(&out); err != nil {
		return fmt.Errorf("GraphQL answer %s: %w", resp.Status, err)
	}
	if len(out.Errors) > 0 {
		return fmt.Errorf("GraphQL errors: %s", out.Errors[0])
	}
	if n := len(out.Data.Account.Users.Edges); n != page {
		return fmt.Errorf("a page of %d users, want %d", n, page)
	}
	return nil
}
