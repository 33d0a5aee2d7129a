// Package keystone validates OpenStack tokens against Keystone v3, as
// keystonemiddleware does for Neutron: wyvernd logs in as its service user,
// keeps that service token fresh, and asks Keystone about each token it is
// shown (GET /v3/auth/tokens), caching the answer so that the API does not
// wait on Keystone for every request.
//
// A validation is trusted until the token expires or for CacheTTL,
// whichever comes first: a revoked token is refused within CacheTTL. A
// refusal is remembered briefly too, so that a flood of bad tokens does
// not become a flood on Keystone.
package keystone

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"time"
)

// Config is where Keystone is and who wyvernd is there.
type Config struct {
	// URL is Keystone's v3 endpoint (…/v3 is appended when missing).
	URL                string
	Username, Password string
	ProjectName        string // the service user's project (default "service")
	UserDomainName     string // default "Default"
	ProjectDomainName  string // default "Default"
	// CacheTTL bounds how long a validated token is trusted (default 30 s).
	CacheTTL time.Duration
	// HTTP is the client towards Keystone (default: 10 s timeout).
	HTTP *http.Client
}

// Identity is who a token speaks for.
type Identity struct {
	UserID, UserName       string
	ProjectID, ProjectName string
	Roles                  []string
	ExpiresAt              time.Time
}

// HasRole says whether the token carries the role.
func (id Identity) HasRole(role string) bool {
	for _, r := range id.Roles {
		if strings.EqualFold(r, role) {
			return true
		}
	}
	return false
}

var (
	// ErrInvalidToken: Keystone does not know the token, or it expired
	// or was revoked, or it is not scoped to a project.
	ErrInvalidToken = errors.New("the token is not valid")
	// ErrUnavailable: Keystone could not be asked.
	ErrUnavailable = errors.New("the identity service is unavailable")
)

const (
	maxCached   = 16384
	negativeTTL = 2 * time.Second
	maxBody     = 4 << 20
	// maxAsking bounds the validations in flight to Keystone; more wait
	// their turn (or their request's deadline).
	maxAsking = 32
)

// Validator answers whether a token is valid, and for whom.
type Validator struct {
	cfg Config
	now func() time.Time

	mu           sync.Mutex
	service      string    // the service token
	serviceUntil time.Time // refresh before this
	cache        map[[32]byte]entry
	inflight     map[[32]byte]*lookup // validations under way, shared by their askers

	login chan struct{} // held while logging in: one login at a time
	slots chan struct{} // validations Keystone is asked at once
}

// lookup is one validation under way.
type lookup struct {
	done chan struct{}
	id   Identity
	err  error
}

type entry struct {
	id    Identity
	err   error // ErrInvalidToken for a remembered refusal
	until time.Time
}

// New makes a validator; it logs in on first use.
func New(cfg Config) *Validator {
	cfg.URL = strings.TrimRight(cfg.URL, "/")
	if !strings.HasSuffix(cfg.URL, "/v3") {
		cfg.URL += "/v3"
	}
	if cfg.ProjectName == "" {
		cfg.ProjectName = "service"
	}
	if cfg.UserDomainName == "" {
		cfg.UserDomainName = "Default"
	}
	if cfg.ProjectDomainName == "" {
		cfg.ProjectDomainName = "Default"
	}
	if cfg.CacheTTL <= 0 {
		cfg.CacheTTL = 30 * time.Second
	}
	if cfg.HTTP == nil {
		cfg.HTTP = &http.Client{Timeout: 10 * time.Second}
	}
	return &Validator{cfg: cfg, now: time.Now, cache: map[[32]byte]entry{}, inflight: map[[32]byte]*lookup{},
		login: make(chan struct{}, 1), slots: make(chan struct{}, maxAsking)}
}

// Validate returns the identity a token speaks for, from the cache or
// from Keystone.
func (v *Validator) Validate(ctx context.Context, token string) (Identity, error) {
	if token == "" {
		return Identity{}, ErrInvalidToken
	}
	key := sha256.Sum256([]byte(token))
	now := v.now()
	v.mu.Lock()
	if e, ok := v.cache[key]; ok && now.Before(e.until) {
		v.mu.Unlock()
		return e.id, e.err
	}
	l, asking := v.inflight[key]
	if !asking { // the first asker asks; the others wait for its answer
		l = &lookup{done: make(chan struct{})}
		v.inflight[key] = l
	}
	v.mu.Unlock()
	if asking {
		select {
		case <-l.done:
			return l.id, l.err
		case <-ctx.Done():
			return Identity{}, fmt.Errorf("%w: %v", ErrUnavailable, ctx.Err())
		}
	}
	l.id, l.err = v.askInTurn(ctx, token)
	v.mu.Lock()
	delete(v.inflight, key)
	switch {
	case l.err == nil:
		v.remember(key, entry{id: l.id, until: minTime(l.id.ExpiresAt, now.Add(v.cfg.CacheTTL))})
	case errors.Is(l.err, ErrInvalidToken):
		v.remember(key, entry{err: ErrInvalidToken, until: now.Add(negativeTTL)})
	}
	v.mu.Unlock()
	close(l.done)
	return l.id, l.err
}

// askInTurn asks Keystone once one of maxAsking slots is free.
func (v *Validator) askInTurn(ctx context.Context, token string) (Identity, error) {
	select {
	case v.slots <- struct{}{}:
		defer func() { <-v.slots }()
	case <-ctx.Done():
		return Identity{}, fmt.Errorf("%w: %v", ErrUnavailable, ctx.Err())
	}
	return v.ask(ctx, token)
}

// remember caches an answer (v.mu held). When the cache is full it drops
// what has lapsed, then refusals, then whatever it must.
func (v *Validator) remember(key [32]byte, e entry) {
	if len(v.cache) >= maxCached {
		now := v.now()
		for k, old := range v.cache {
			if !now.Before(old.until) || old.err != nil {
				delete(v.cache, k)
			}
		}
		for k := range v.cache {
			if len(v.cache) < maxCached*3/4 {
				break
			}
			delete(v.cache, k)
		}
	}
	v.cache[key] = e
}

// ask validates one token with Keystone, logging in again once if the
// service token itself has lapsed.
func (v *Validator) ask(ctx context.Context, token string) (Identity, error) {
	stale := ""
	for attempt := 0; ; attempt++ {
		svc, err := v.serviceToken(ctx, stale)
		if err != nil {
			return Identity{}, err
		}
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, v.cfg.URL+"/auth/tokens", nil)
		if err != nil {
			return Identity{}, err
		}
		req.Header.Set("X-Auth-Token", svc)
		req.Header.Set("X-Subject-Token", token)
		resp, err := v.cfg.HTTP.Do(req)
		if err != nil {
			return Identity{}, fmt.Errorf("%w: %v", ErrUnavailable, err)
		}
		body, err := io.ReadAll(io.LimitReader(resp.Body, maxBody))
		resp.Body.Close()
		if err != nil {
			return Identity{}, fmt.Errorf("%w: %v", ErrUnavailable, err)
		}
		switch {
		case resp.StatusCode == http.StatusOK:
			return parseToken(body, v.now())
		case resp.StatusCode == http.StatusNotFound:
			return Identity{}, ErrInvalidToken
		case resp.StatusCode == http.StatusUnauthorized && attempt == 0:
			stale = svc // our service token lapsed: log in again
			continue
		default:
			return Identity{}, fmt.Errorf("%w: validating a token: %d %s", ErrUnavailable, resp.StatusCode, bytes.TrimSpace(body))
		}
	}
}

// serviceToken logs in as the service user, or reuses the token from the
// last login while it has more than a minute to live and is not the
// stale one Keystone just refused. One login at a time: askers who
// find a login under way wait for its token.
func (v *Validator) serviceToken(ctx context.Context, stale string) (string, error) {
	current := func() (string, bool) {
		v.mu.Lock()
		defer v.mu.Unlock()
		return v.service, v.service != "" && v.service != stale && v.now().Before(v.serviceUntil)
	}
	if svc, ok := current(); ok {
		return svc, nil
	}
	select {
	case v.login <- struct{}{}:
		defer func() { <-v.login }()
	case <-ctx.Done():
		return "", fmt.Errorf("%w: %v", ErrUnavailable, ctx.Err())
	}
	if svc, ok := current(); ok { // someone else logged in meanwhile
		return svc, nil
	}
	var body struct {
		Auth struct {
			Identity struct {
				Methods  []string `json:"methods"`
				Password struct {
					User struct {
						Name     string            `json:"name"`
						Password string            `json:"password"`
						Domain   map[string]string `json:"domain"`
					} `json:"user"`
				} `json:"password"`
			} `json:"identity"`
			Scope struct {
				Project struct {
					Name   string            `json:"name"`
					Domain map[string]string `json:"domain"`
				} `json:"project"`
			} `json:"scope"`
		} `json:"auth"`
	}
	body.Auth.Identity.Methods = []string{"password"}
	u := &body.Auth.Identity.Password.User
	u.Name, u.Password, u.Domain = v.cfg.Username, v.cfg.Password, map[string]string{"name": v.cfg.UserDomainName}
	p := &body.Auth.Scope.Project
	p.Name, p.Domain = v.cfg.ProjectName, map[string]string{"name": v.cfg.ProjectDomainName}
	b, _ := json.Marshal(body)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, v.cfg.URL+"/auth/tokens", bytes.NewReader(b))
	if err != nil {
		return "", err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := v.cfg.HTTP.Do(req)
	if err != nil {
		return "", fmt.Errorf("%w: logging in as %s: %v", ErrUnavailable, v.cfg.Username, err)
	}
	rb, _ := io.ReadAll(io.LimitReader(resp.Body, maxBody))
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		return "", fmt.Errorf("%w: logging in as %s: %d %s", ErrUnavailable, v.cfg.Username, resp.StatusCode, bytes.TrimSpace(rb))
	}
	id, err := parseToken(rb, v.now())
	if err != nil {
		return "", fmt.Errorf("%w: the service token: %v", ErrUnavailable, err)
	}
	svc := resp.Header.Get("X-Subject-Token")
	v.mu.Lock()
	// Renew a minute before expiry, or at three quarters of a short life.
	v.service, v.serviceUntil = svc, id.ExpiresAt.Add(-min(time.Minute, id.ExpiresAt.Sub(v.now())/4))
	v.mu.Unlock()
	return svc, nil
}

// tokenBody is the part of Keystone's token document a validator reads.
type tokenBody struct {
	Token struct {
		ExpiresAt string `json:"expires_at"`
		User      struct {
			ID   string `json:"id"`
			Name string `json:"name"`
		} `json:"user"`
		Project *struct {
			ID   string `json:"id"`
			Name string `json:"name"`
		} `json:"project"`
		Roles []struct {
			Name string `json:"name"`
		} `json:"roles"`
	} `json:"token"`
}

// parseToken reads a token document. Only project-scoped, unexpired
// tokens are valid for the network API, as for Neutron.
func parseToken(b []byte, now time.Time) (Identity, error) {
	var tb tokenBody
	if err := json.Unmarshal(b, &tb); err != nil {
		return Identity{}, fmt.Errorf("%w: Keystone's answer is not a token document: %v", ErrUnavailable, err)
	}
	t := tb.Token
	exp, err := time.Parse(time.RFC3339Nano, t.ExpiresAt)
	if err != nil {
		return Identity{}, fmt.Errorf("%w: expires_at %q: %v", ErrUnavailable, t.ExpiresAt, err)
	}
	if !now.Before(exp) {
		return Identity{}, ErrInvalidToken
	}
	if t.Project == nil || t.Project.ID == "" {
		return Identity{}, fmt.Errorf("%w: not scoped to a project", ErrInvalidToken)
	}
	id := Identity{UserID: t.User.ID, UserName: t.User.Name, ProjectID: t.Project.ID, ProjectName: t.Project.Name, ExpiresAt: exp}
	for _, r := range t.Roles {
		id.Roles = append(id.Roles, r.Name)
	}
	return id, nil
}

func minTime(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}
