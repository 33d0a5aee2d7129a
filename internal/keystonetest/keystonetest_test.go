package keystonetest

import (
	"encoding/json"
	"io"
	"net/http"
	"os"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// validation is what GET /v3/auth/tokens answers, the fields a service
// validating tokens reads.
type validation struct {
	Token struct {
		ExpiresAt time.Time `json:"expires_at"`
		IssuedAt  time.Time `json:"issued_at"`
		User      struct {
			ID   string `json:"id"`
			Name string `json:"name"`
		} `json:"user"`
		Project struct {
			ID     string `json:"id"`
			Name   string `json:"name"`
			Domain struct {
				ID string `json:"id"`
			} `json:"domain"`
		} `json:"project"`
		Roles []struct {
			ID   string `json:"id"`
			Name string `json:"name"`
		} `json:"roles"`
	} `json:"token"`
}

func (v validation) roleNames() []string {
	var names []string
	for _, r := range v.Token.Roles {
		names = append(names, r.Name)
	}
	slices.Sort(names)
	return names
}

// validate asks Keystone about subject with the token of a service: its
// status, and the body when it is 200.
func validate(t *testing.T, k *Keystone, service, subject string) (int, validation) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, k.URL()+"/auth/tokens?nocatalog", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("X-Auth-Token", service)
	req.Header.Set("X-Subject-Token", subject)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	var v validation
	if resp.StatusCode == http.StatusOK {
		if err := json.Unmarshal(b, &v); err != nil {
			t.Fatalf("validation body: %v: %s", err, b)
		}
	}
	return resp.StatusCode, v
}

func TestKeystone(t *testing.T) {
	k := Start(t, Options{})
	if !strings.HasPrefix(k.URL(), "http://127.0.0.1:") || !strings.HasSuffix(k.URL(), "/v3") {
		t.Fatalf("URL %q: want http://127.0.0.1:PORT/v3", k.URL())
	}

	alpha := k.CreateProject(t, "alpha")
	beta := k.CreateProject(t, "beta")
	alice := k.CreateUser(t, "alice", "alice-pw", alpha, "member")
	bob := k.CreateUser(t, "bob", "bob-pw", beta, "member")
	aliceTok, aliceExp := k.Token(t, "alice", "alice-pw", "alpha")
	bobTok, _ := k.Token(t, "bob", "bob-pw", "beta")
	if d := time.Until(aliceExp); d < 59*time.Minute || d > 61*time.Minute {
		t.Errorf("alice's token expires in %v, want an hour", d)
	}
	if aliceTok == bobTok {
		t.Fatal("alice and bob have the same token")
	}

	svcUser, svcPassword, svcProject := k.ServiceUser(t)
	if u, p, pr := k.ServiceUser(t); u != svcUser || p != svcPassword || pr != svcProject {
		t.Errorf("ServiceUser again: %s/%s, want the same user %s/%s", u, pr, svcUser, svcProject)
	}
	svcTok, _ := k.Token(t, svcUser, svcPassword, svcProject)

	t.Run("validate", func(t *testing.T) {
		for _, c := range []struct {
			name           string
			token          string
			userID, projID string
		}{
			{"alice", aliceTok, alice, alpha},
			{"bob", bobTok, bob, beta},
		} {
			status, v := validate(t, k, svcTok, c.token)
			if status != http.StatusOK {
				t.Fatalf("%s's token: status %d, want 200", c.name, status)
			}
			if v.Token.User.ID != c.userID || v.Token.User.Name != c.name {
				t.Errorf("%s's token: user %s (%s), want %s", c.name, v.Token.User.ID, v.Token.User.Name, c.userID)
			}
			if v.Token.Project.ID != c.projID || v.Token.Project.Domain.ID != "default" {
				t.Errorf("%s's token: project %s in domain %s, want %s in default", c.name, v.Token.Project.ID, v.Token.Project.Domain.ID, c.projID)
			}
			// member implies reader: Keystone lists both.
			if got := v.roleNames(); !slices.Equal(got, []string{"member", "reader"}) {
				t.Errorf("%s's token: roles %v, want [member reader]", c.name, got)
			}
			if v.Token.ExpiresAt.IsZero() || !v.Token.ExpiresAt.After(v.Token.IssuedAt) {
				t.Errorf("%s's token: issued %v, expires %v", c.name, v.Token.IssuedAt, v.Token.ExpiresAt)
			}
		}
		// The service user's own token carries admin, and what it implies.
		_, v := validate(t, k, k.AdminToken(), svcTok)
		if got := v.roleNames(); !slices.Equal(got, []string{"admin", "member", "reader"}) {
			t.Errorf("service token: roles %v, want [admin member reader]", got)
		}
		if status, _ := validate(t, k, svcTok, "not-a-token"); status != http.StatusNotFound {
			t.Errorf("validating garbage: status %d, want 404", status)
		}
	})

	t.Run("revoke", func(t *testing.T) {
		k.Revoke(t, aliceTok)
		if status, _ := validate(t, k, svcTok, aliceTok); status != http.StatusNotFound {
			t.Errorf("revoked token: status %d, want 404", status)
		}
		if status, _ := validate(t, k, svcTok, bobTok); status != http.StatusOK {
			t.Errorf("bob's token after alice's was revoked: status %d, want 200", status)
		}
	})

	// One request at a time on WAL sqlite: concurrent clients queue, none
	// sees "database is locked".
	t.Run("concurrent", func(t *testing.T) {
		var wg sync.WaitGroup
		for range 8 {
			wg.Go(func() {
				tok, _, err := k.token(t.Context(), "bob", "bob-pw", "beta")
				if err != nil {
					t.Error(err)
					return
				}
				if _, err := k.call(t.Context(), http.MethodGet, "/auth/tokens?nocatalog",
					map[string]string{"X-Auth-Token": svcTok, "X-Subject-Token": tok}, nil, nil, http.StatusOK); err != nil {
					t.Error(err)
				}
			})
		}
		wg.Wait()
	})

	k.RegisterService(t, "network", "neutron", "http://127.0.0.1:9696/")

	t.Run("catalog", func(t *testing.T) {
		var out struct {
			Catalog []struct {
				Type, Name string
				Endpoints  []struct {
					Interface, URL string
					RegionID       string `json:"region_id"`
				}
			}
		}
		if _, err := k.call(t.Context(), http.MethodGet, "/auth/catalog",
			map[string]string{"X-Auth-Token": bobTok}, nil, &out, http.StatusOK); err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, s := range out.Catalog {
			for _, e := range s.Endpoints {
				got = append(got, strings.Join([]string{s.Type, s.Name, e.Interface, e.RegionID, e.URL}, " "))
			}
		}
		slices.Sort(got)
		want := []string{
			"identity keystone admin RegionOne " + k.URL(),
			"identity keystone internal RegionOne " + k.URL(),
			"identity keystone public RegionOne " + k.URL(),
			"network neutron admin RegionOne http://127.0.0.1:9696/",
			"network neutron internal RegionOne http://127.0.0.1:9696/",
			"network neutron public RegionOne http://127.0.0.1:9696/",
		}
		if !slices.Equal(got, want) {
			t.Errorf("catalog:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
		}
	})

	t.Run("openstack-cli", func(t *testing.T) {
		tok := openstack(t, k, "bob", "bob-pw", "beta", "token", "issue", "-f", "value", "-c", "id")
		status, v := validate(t, k, svcTok, tok)
		if status != http.StatusOK || v.Token.User.ID != bob || v.Token.Project.ID != beta {
			t.Errorf("the CLI's token: status %d, user %s, project %s; want 200, %s, %s", status, v.Token.User.ID, v.Token.Project.ID, bob, beta)
		}
		// The CLI finds the network service through the catalog.
		if got := openstack(t, k, "bob", "bob-pw", "beta", "catalog", "show", "network", "-f", "value", "-c", "name"); got != "neutron" {
			t.Errorf("openstack catalog show network: %q, want neutron", got)
		}
	})
}

// openstack runs the openstack CLI as user and returns its trimmed output.
func openstack(t *testing.T, k *Keystone, user, password, project string, args ...string) string {
	t.Helper()
	began := time.Now()
	cmd := exec.CommandContext(t.Context(), "openstack", append([]string{
		"--os-auth-url", k.URL(),
		"--os-username", user, "--os-password", password, "--os-project-name", project,
		"--os-user-domain-name", "Default", "--os-project-domain-name", "Default",
		"--os-identity-api-version", "3",
	}, args...)...)
	// Nothing of the caller's OS_* settings (a clouds.yaml's cloud, a token).
	for _, e := range os.Environ() {
		if !strings.HasPrefix(e, "OS_") {
			cmd.Env = append(cmd.Env, e)
		}
	}
	out, err := cmd.Output()
	if err != nil {
		var stderr []byte
		if ee, ok := err.(*exec.ExitError); ok {
			stderr = ee.Stderr
		}
		t.Fatalf("openstack %s: %v\n%s%s", strings.Join(args, " "), err, out, stderr)
	}
	t.Logf("openstack %s: %v", strings.Join(args, " "), time.Since(began).Round(10*time.Millisecond))
	return strings.TrimSpace(string(out))
}

// TestTokenTTL: Options.TokenTTL is Keystone's token lifetime, and an
// expired token no longer validates.
func TestTokenTTL(t *testing.T) {
	k := Start(t, Options{TokenTTL: 3 * time.Second})
	p := k.CreateProject(t, "alpha")
	k.CreateUser(t, "alice", "alice-pw", p, "reader")
	tok, exp := k.Token(t, "alice", "alice-pw", "alpha")
	status, v := validate(t, k, k.AdminToken(), tok)
	if status != http.StatusOK {
		t.Fatalf("fresh token: status %d", status)
	}
	if d := v.Token.ExpiresAt.Sub(v.Token.IssuedAt); d != 3*time.Second {
		t.Errorf("token lives %v, want 3s", d)
	}
	if got := v.roleNames(); !slices.Equal(got, []string{"reader"}) {
		t.Errorf("roles %v, want [reader]", got)
	}
	time.Sleep(time.Until(exp) + 100*time.Millisecond)
	// AdminToken has renewed itself meanwhile.
	if status, _ := validate(t, k, k.AdminToken(), tok); status != http.StatusNotFound {
		t.Errorf("expired token: status %d, want 404", status)
	}
}
