package keystonetest

// The harness's side of Keystone's v3 REST API: tokens, projects, users,
// roles and the catalog, as the tests drive them.

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"testing"
	"time"
)

// URL is Keystone's identity API v3, http://127.0.0.1:PORT/v3: what
// clients take as auth_url (OS_AUTH_URL), and the URL of the identity
// endpoints in the catalog.
func (k *Keystone) URL() string { return k.base + "/v3" }

// Dir is Keystone's directory: keystone.conf, keystone.db, the key
// repositories and the logs (keystone.log, serve.log).
func (k *Keystone) Dir() string { return k.dir }

// Admin returns the administrator bootstrap made: user admin with the
// admin role on project admin, in domain Default.
func (k *Keystone) Admin() (user, password, project string) {
	return adminUser, k.adminPassword, adminProject
}

// AdminToken returns a token of the admin user scoped to project admin,
// issued again once less than half its life is left. It panics if
// Keystone cannot issue one (Start has already shown it can).
func (k *Keystone) AdminToken() string {
	k.mu.Lock()
	stale := time.Now().After(k.adminIssued.Add(k.adminExpires.Sub(k.adminIssued) / 2))
	k.mu.Unlock()
	if stale {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if err := k.issueAdminToken(ctx); err != nil {
			panic(fmt.Sprintf("keystonetest: admin token: %v", err))
		}
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.adminToken
}

func (k *Keystone) issueAdminToken(ctx context.Context) error {
	issued := time.Now()
	tok, exp, err := k.token(ctx, adminUser, k.adminPassword, adminProject)
	if err != nil {
		return err
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	k.adminToken, k.adminIssued, k.adminExpires = tok, issued, exp
	return nil
}

// Token issues a token by password to user of domain Default, scoped to
// projectName of domain Default, and returns it (the X-Subject-Token
// header) with its expires_at.
func (k *Keystone) Token(t testing.TB, user, password, projectName string) (token string, expires time.Time) {
	t.Helper()
	token, expires, err := k.token(t.Context(), user, password, projectName)
	if err != nil {
		t.Fatalf("keystonetest: %v", err)
	}
	return token, expires
}

func (k *Keystone) token(ctx context.Context, user, password, projectName string) (string, time.Time, error) {
	body := map[string]any{"auth": map[string]any{
		"identity": map[string]any{
			"methods": []string{"password"},
			"password": map[string]any{"user": map[string]any{
				"name": user, "password": password, "domain": map[string]string{"name": domainName},
			}},
		},
		"scope": map[string]any{"project": map[string]any{
			"name": projectName, "domain": map[string]string{"name": domainName},
		}},
	}}
	var out struct {
		Token struct {
			ExpiresAt time.Time `json:"expires_at"`
		} `json:"token"`
	}
	hdr, err := k.call(ctx, http.MethodPost, "/auth/tokens?nocatalog", nil, body, &out, http.StatusCreated)
	if err != nil {
		return "", time.Time{}, fmt.Errorf("token for %s in project %s: %w", user, projectName, err)
	}
	tok := hdr.Get("X-Subject-Token")
	if tok == "" {
		return "", time.Time{}, fmt.Errorf("token for %s in project %s: no X-Subject-Token", user, projectName)
	}
	return tok, out.Token.ExpiresAt, nil
}

// Revoke revokes token (DELETE /v3/auth/tokens): validating it answers 404
// from then on.
func (k *Keystone) Revoke(t testing.TB, token string) {
	t.Helper()
	_, err := k.call(t.Context(), http.MethodDelete, "/auth/tokens",
		map[string]string{"X-Auth-Token": k.AdminToken(), "X-Subject-Token": token}, nil, nil, http.StatusNoContent)
	if err != nil {
		t.Fatalf("keystonetest: revoking a token: %v", err)
	}
}

// CreateProject creates project name in domain Default and returns its id.
func (k *Keystone) CreateProject(t testing.TB, name string) (id string) {
	t.Helper()
	id, err := k.createProject(t.Context(), name)
	if err != nil {
		t.Fatalf("keystonetest: %v", err)
	}
	return id
}

func (k *Keystone) createProject(ctx context.Context, name string) (string, error) {
	var out struct {
		Project struct {
			ID string `json:"id"`
		} `json:"project"`
	}
	body := map[string]any{"project": map[string]any{"name": name, "domain_id": domainID, "enabled": true}}
	if _, err := k.admin(ctx, http.MethodPost, "/projects", body, &out, http.StatusCreated); err != nil {
		return "", fmt.Errorf("project %q: %w", name, err)
	}
	return out.Project.ID, nil
}

// CreateUser creates user name in domain Default with password, whose
// default project is projectID, and grants it role (by name: member,
// reader or admin; bootstrap made these, admin implies member implies
// reader) on that project. It returns the user's id.
func (k *Keystone) CreateUser(t testing.TB, name, password, projectID, role string) (id string) {
	t.Helper()
	id, err := k.createUser(t.Context(), name, password, projectID, role)
	if err != nil {
		t.Fatalf("keystonetest: %v", err)
	}
	return id
}

func (k *Keystone) createUser(ctx context.Context, name, password, projectID, role string) (string, error) {
	roleID, err := k.roleID(ctx, role)
	if err != nil {
		return "", fmt.Errorf("user %q: %w", name, err)
	}
	var out struct {
		User struct {
			ID string `json:"id"`
		} `json:"user"`
	}
	body := map[string]any{"user": map[string]any{
		"name": name, "password": password, "domain_id": domainID,
		"default_project_id": projectID, "enabled": true,
	}}
	if _, err := k.admin(ctx, http.MethodPost, "/users", body, &out, http.StatusCreated); err != nil {
		return "", fmt.Errorf("user %q: %w", name, err)
	}
	grant := "/projects/" + url.PathEscape(projectID) + "/users/" + url.PathEscape(out.User.ID) + "/roles/" + url.PathEscape(roleID)
	if _, err := k.admin(ctx, http.MethodPut, grant, nil, nil, http.StatusNoContent); err != nil {
		return "", fmt.Errorf("user %q: role %s on project %s: %w", name, role, projectID, err)
	}
	return out.User.ID, nil
}

func (k *Keystone) roleID(ctx context.Context, name string) (string, error) {
	k.mu.Lock()
	id, ok := k.roleIDs[name]
	k.mu.Unlock()
	if ok {
		return id, nil
	}
	var out struct {
		Roles []struct {
			ID string `json:"id"`
		} `json:"roles"`
	}
	if _, err := k.admin(ctx, http.MethodGet, "/roles?name="+url.QueryEscape(name), nil, &out, http.StatusOK); err != nil {
		return "", fmt.Errorf("role %q: %w", name, err)
	}
	if len(out.Roles) != 1 {
		return "", fmt.Errorf("role %q: %d roles of that name", name, len(out.Roles))
	}
	k.mu.Lock()
	k.roleIDs[name] = out.Roles[0].ID
	k.mu.Unlock()
	return out.Roles[0].ID, nil
}

// RegisterService adds a service of type typ (e.g. network) named name
// (e.g. neutron) with public, internal and admin endpoints in RegionOne,
// all at url: how clients such as the openstack CLI find it through the
// catalog of their token.
func (k *Keystone) RegisterService(t testing.TB, typ, name, url string) {
	t.Helper()
	if err := k.registerService(t.Context(), typ, name, url); err != nil {
		t.Fatalf("keystonetest: %v", err)
	}
}

func (k *Keystone) registerService(ctx context.Context, typ, name, url string) error {
	var out struct {
		Service struct {
			ID string `json:"id"`
		} `json:"service"`
	}
	body := map[string]any{"service": map[string]any{"type": typ, "name": name, "enabled": true}}
	if _, err := k.admin(ctx, http.MethodPost, "/services", body, &out, http.StatusCreated); err != nil {
		return fmt.Errorf("service %s (%s): %w", name, typ, err)
	}
	for _, iface := range []string{"public", "internal", "admin"} {
		body := map[string]any{"endpoint": map[string]any{
			"service_id": out.Service.ID, "interface": iface, "url": url, "region_id": region, "enabled": true,
		}}
		if _, err := k.admin(ctx, http.MethodPost, "/endpoints", body, nil, http.StatusCreated); err != nil {
			return fmt.Errorf("service %s (%s): %s endpoint: %w", name, typ, iface, err)
		}
	}
	return nil
}

// ServiceUser returns the service user, made at the first call: user
// wyvern with the admin role on project service, as a Neutron server's
// [keystone_authtoken] user, which gets its own token with it and
// validates the tokens of others.
func (k *Keystone) ServiceUser(t testing.TB) (user, password, project string) {
	t.Helper()
	k.serviceMu.Lock()
	defer k.serviceMu.Unlock()
	if k.service == nil {
		c := credentials{user: "wyvern", password: rand.Text(), project: "service"}
		pid, err := k.createProject(t.Context(), c.project)
		if err == nil {
			_, err = k.createUser(t.Context(), c.user, c.password, pid, "admin")
		}
		if err != nil {
			t.Fatalf("keystonetest: service user: %v", err)
		}
		k.service = &c
	}
	return k.service.user, k.service.password, k.service.project
}

// admin calls the API with the admin token.
func (k *Keystone) admin(ctx context.Context, method, path string, in, out any, want int) (http.Header, error) {
	return k.call(ctx, method, path, map[string]string{"X-Auth-Token": k.AdminToken()}, in, out, want)
}

// call sends method path (under /v3) with hdr, in as JSON when not nil,
// and decodes the answer into out when not nil; any status but want is
// an error carrying Keystone's answer.
func (k *Keystone) call(ctx context.Context, method, path string, hdr map[string]string, in, out any, want int) (http.Header, error) {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return nil, err
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, k.URL()+path, body)
	if err != nil {
		return nil, err
	}
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Accept", "application/json")
	for h, v := range hdr {
		req.Header.Set(h, v)
	}
	resp, err := k.client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", method, path, err)
	}
	if resp.StatusCode != want {
		return nil, fmt.Errorf("%s %s: %s: %s", method, path, resp.Status, bytes.TrimSpace(b))
	}
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			return nil, fmt.Errorf("%s %s: %w", method, path, err)
		}
	}
	return resp.Header, nil
}
