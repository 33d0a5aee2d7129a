package main

import (
	"archive/tar"
	"compress/gzip"
	"encoding/json"
	"fmt"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"
)

// bundleCmd collects what a bug report needs into one tarball: the
// cluster's state, the chassis, the node's punt counters, the flows of
// every chassis (each asked of the node that manages it), the node's
// OVSDB and its recent logs. What could not be had is named in
// errors.txt; the rest is still written.
func bundleCmd(c *client) *cobra.Command {
	var out string
	cmd := &cobra.Command{Use: "support-bundle [--file FILE.tar.gz]", Short: "Collect cluster state, chassis, punts, flows, OVSDB and logs into a tarball",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if out == "" {
				out = "wyvern-support-" + time.Now().UTC().Format("20060102T150405Z") + ".tar.gz"
			}
			files := map[string][]byte{}
			var order []string
			var errs []string
			put := func(name string, v any) {
				b, err := json.MarshalIndent(v, "", "  ")
				if err != nil {
					errs = append(errs, name+": "+err.Error())
					return
				}
				files[name] = append(b, '\n')
				order = append(order, name)
			}
			get := func(cl *client, name, path string) map[string]any {
				v, err := cl.do("GET", path, nil)
				if err != nil {
					errs = append(errs, fmt.Sprintf("%s (%s%s): %v", name, cl.base, path, err))
					return nil
				}
				put(name, v)
				return v
			}
			clusterState := get(c, "cluster.json", "/v2.0/cluster")
			chassis := get(c, "chassis.json", "/v2.0/chassis")
			get(c, "punts.json", "/debug/punts")
			get(c, "ovsdb.json", "/debug/ovsdb")
			get(c, "logs.json", "/debug/logs")
			apis := map[string]string{}
			st, _ := clusterState["cluster"].(map[string]any)
			if members, ok := st["members"].([]any); ok {
				for _, m := range members {
					mm, _ := m.(map[string]any)
					id, _ := mm["id"].(string)
					api, _ := mm["api_address"].(string)
					apis[id] = api
				}
			}
			scheme := "http"
			if strings.HasPrefix(c.base, "https://") {
				scheme = "https"
			}
			list, _ := chassis["chassis"].([]any)
			for _, ch := range list {
				m, _ := ch.(map[string]any)
				name, _ := m["name"].(string)
				node, _ := m["node_id"].(string)
				cl := c
				if api := apis[node]; api != "" {
					cl = &client{base: scheme + "://" + api, token: c.token, http: c.http}
				}
				get(cl, "flows-"+name+".json", "/debug/flows?chassis="+url.QueryEscape(name))
			}
			if len(errs) > 0 {
				files["errors.txt"] = []byte(strings.Join(errs, "\n") + "\n")
				order = append(order, "errors.txt")
			}
			if err := writeTarball(out, files, order); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "wrote %s: %s\n", out, strings.Join(order, ", "))
			return nil
		}}
	cmd.Flags().StringVar(&out, "file", "", "the tarball to write (default wyvern-support-<time>.tar.gz)")
	return cmd
}

func writeTarball(path string, files map[string][]byte, order []string) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	gz := gzip.NewWriter(f)
	tw := tar.NewWriter(gz)
	now := time.Now()
	for _, name := range order {
		b := files[name]
		if err := tw.WriteHeader(&tar.Header{Name: "wyvern-support/" + name, Mode: 0o644, Size: int64(len(b)), ModTime: now}); err != nil {
			f.Close()
			return err
		}
		if _, err := tw.Write(b); err != nil {
			f.Close()
			return err
		}
	}
	if err := tw.Close(); err != nil {
		f.Close()
		return err
	}
	if err := gz.Close(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
