package keystone

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"
)

// fakeKeystone is the unit seam: it issues a service token, knows a set of
// user tokens, and counts validations. The real Keystone is exercised by
// cmd/wyvernd's auth tests.
type fakeKeystone struct {
	mu          sync.Mutex
	service     string
	users       map[string]string // token -> project id; "" unscoped
	expires     time.Time
	logins      int
	validations int
}

func (f *fakeKeystone) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	doc := func(project string) map[string]any {
		exp := f.expires
		if project == "service" {
			exp = time.Now().Add(2 * time.Hour)
		}
		t := map[string]any{"expires_at": exp.UTC().Format("2006-01-02T15:04:05.000000Z"),
			"user": map[string]any{"id": "u1", "name": "alice"}, "roles": []any{map[string]any{"name": "member"}, map[string]any{"name": "reader"}}}
		if project != "" {
			t["project"] = map[string]any{"id": project, "name": "p-" + project}
		}
		return map[string]any{"token": t}
	}
	switch r.Method {
	case http.MethodPost:
		f.logins++
		f.service = "svc-" + string(rune('a'+f.logins))
		w.Header().Set("X-Subject-Token", f.service)
		w.WriteHeader(http.StatusCreated)
		_ = json.NewEncoder(w).Encode(doc("service"))
	case http.MethodGet:
		if r.Header.Get("X-Auth-Token") != f.service {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		f.validations++
		p, ok := f.users[r.Header.Get("X-Subject-Token")]
		if !ok {
			w.WriteHeader(http.StatusNotFound)
			return
		}
		_ = json.NewEncoder(w).Encode(doc(p))
	}
}

func setup(t *testing.T, ttl time.Duration) (*fakeKeystone, *Validator, *time.Time) {
	f := &fakeKeystone{users: map[string]string{"tok-a": "pa", "tok-unscoped": ""}, expires: time.Now().Add(time.Hour)}
	srv := httptest.NewServer(f)
	t.Cleanup(srv.Close)
	v := New(Config{URL: srv.URL, Username: "wyvern", Password: "pw", CacheTTL: ttl})
	now := time.Now()
	v.now = func() time.Time { return now }
	return f, v, &now
}

func TestValidTokenIsCachedWithinTheBound(t *testing.T) {
	f, v, now := setup(t, 30*time.Second)
	for range 3 {
		id, err := v.Validate(context.Background(), "tok-a")
		if err != nil || id.ProjectID != "pa" || !id.HasRole("member") || id.HasRole("admin") {
			t.Fatalf("got %+v, %v", id, err)
		}
	}
	if f.validations != 1 || f.logins != 1 {
		t.Fatalf("validations %d logins %d, want 1 and 1", f.validations, f.logins)
	}
	// Revoked: still trusted inside the bound, refused once it passes.
	delete(f.users, "tok-a")
	*now = now.Add(29 * time.Second)
	if _, err := v.Validate(context.Background(), "tok-a"); err != nil {
		t.Fatalf("inside the cache bound: %v", err)
	}
	*now = now.Add(2 * time.Second)
	if _, err := v.Validate(context.Background(), "tok-a"); !errors.Is(err, ErrInvalidToken) {
		t.Fatalf("after the cache bound a revoked token gave %v", err)
	}
}

func TestExpiryEndsTrustBeforeTheBound(t *testing.T) {
	f, v, now := setup(t, time.Hour)
	f.expires = now.Add(10 * time.Second)
	if _, err := v.Validate(context.Background(), "tok-a"); err != nil {
		t.Fatal(err)
	}
	*now = now.Add(11 * time.Second)
	if _, err := v.Validate(context.Background(), "tok-a"); !errors.Is(err, ErrInvalidToken) {
		t.Fatalf("an expired token gave %v", err)
	}
}

func TestRefusalsAreRememberedBriefly(t *testing.T) {
	f, v, now := setup(t, 30*time.Second)
	for range 5 {
		if _, err := v.Validate(context.Background(), "nope"); !errors.Is(err, ErrInvalidToken) {
			t.Fatalf("unknown token gave %v", err)
		}
	}
	if f.validations != 1 {
		t.Fatalf("%d validations for one bad token in a burst", f.validations)
	}
	f.users["nope"] = "pb" // e.g. a clock skew: it becomes valid
	*now = now.Add(negativeTTL + time.Millisecond)
	if id, err := v.Validate(context.Background(), "nope"); err != nil || id.ProjectID != "pb" {
		t.Fatalf("after the refusal lapsed: %+v %v", id, err)
	}
	if _, err := v.Validate(context.Background(), ""); !errors.Is(err, ErrInvalidToken) {
		t.Fatal("an empty token was not refused")
	}
}

func TestUnscopedTokenIsRefused(t *testing.T) {
	_, v, _ := setup(t, time.Minute)
	if _, err := v.Validate(context.Background(), "tok-unscoped"); !errors.Is(err, ErrInvalidToken) {
		t.Fatalf("an unscoped token gave %v", err)
	}
}

func TestServiceTokenIsRenewedWhenKeystoneForgetsIt(t *testing.T) {
	f, v, now := setup(t, time.Second)
	if _, err := v.Validate(context.Background(), "tok-a"); err != nil {
		t.Fatal(err)
	}
	f.service = "rotated" // Keystone no longer honours ours
	*now = now.Add(2 * time.Second)
	if _, err := v.Validate(context.Background(), "tok-a"); err != nil {
		t.Fatalf("after the service token lapsed: %v", err)
	}
	if f.logins != 2 {
		t.Fatalf("%d logins, want 2", f.logins)
	}
}

func TestKeystoneDownIsUnavailableNotInvalid(t *testing.T) {
	v := New(Config{URL: "http://127.0.0.1:1", Username: "u", Password: "p"})
	if _, err := v.Validate(context.Background(), "tok"); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("got %v", err)
	}
}

func FuzzParseToken(f *testing.F) {
	f.Add([]byte(`{"token":{"expires_at":"2999-01-01T00:00:00.000000Z","project":{"id":"p"},"roles":[{"name":"admin"}]}}`))
	f.Add([]byte(`{"token":{"expires_at":"yesterday"}}`))
	f.Add([]byte(`[]`))
	f.Fuzz(func(t *testing.T, b []byte) {
		id, err := parseToken(b, time.Unix(0, 0))
		if err == nil && (id.ProjectID == "" || id.ExpiresAt.IsZero()) {
			t.Fatalf("accepted a token without project or expiry: %+v", id)
		}
	})
}

// TestConcurrentAskersShareOneValidation: many requests with the same
// new token at once cost Keystone one validation, and one login.
func TestConcurrentAskersShareOneValidation(t *testing.T) {
	f := &fakeKeystone{users: map[string]string{"tok-a": "pa"}, expires: time.Now().Add(time.Hour)}
	slow := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		time.Sleep(50 * time.Millisecond)
		f.ServeHTTP(w, r)
	})
	srv := httptest.NewServer(slow)
	defer srv.Close()
	v := New(Config{URL: srv.URL, Username: "wyvern", Password: "pw"})
	var wg sync.WaitGroup
	errs := make(chan error, 50)
	for range 50 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			id, err := v.Validate(context.Background(), "tok-a")
			if err == nil && id.ProjectID != "pa" {
				err = errors.New("wrong project " + id.ProjectID)
			}
			errs <- err
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if f.validations != 1 || f.logins != 1 {
		t.Fatalf("%d validations and %d logins for 50 concurrent askers, want 1 and 1", f.validations, f.logins)
	}
}
