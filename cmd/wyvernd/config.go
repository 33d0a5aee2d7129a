package main

import (
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/spf13/pflag"
	"github.com/spf13/viper"
	"go.uber.org/zap/zapcore"

	"github.com/wyvern-sdn/wyvern/ofctl"
	"github.com/wyvern-sdn/wyvern/pipeline"
)

// Config is wyvernd's configuration: flags, WYVERN_* environment variables
// and the YAML --config file, in falling precedence.
type Config struct {
	Config       string `mapstructure:"config"`
	NodeID       string `mapstructure:"node-id"`
	OpenFlowAddr string `mapstructure:"openflow-addr"`
	Forwarding   string `mapstructure:"forwarding"`
	LogLevel     string `mapstructure:"log-level"`
}

func flags() *pflag.FlagSet {
	host, _ := os.Hostname()
	fs := pflag.NewFlagSet("wyvernd", pflag.ContinueOnError)
	fs.String("config", "", "optional YAML file with any of these settings")
	fs.String("node-id", host, "unique node name")
	fs.String("openflow-addr", "tcp:127.0.0.1:6653", "where bridges connect: tcp:HOST:PORT or unix:PATH")
	fs.String("forwarding", "reactive", "reactive|proactive")
	fs.String("log-level", "info", "debug|info|warn|error")
	return fs
}

// loadConfig reads flags, environment and the optional file strictly:
// unknown keys in the file are errors.
func loadConfig(args []string) (Config, error) {
	fs := flags()
	if err := fs.Parse(args); err != nil {
		return Config{}, err
	}
	if fs.NArg() > 0 {
		return Config{}, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	v := viper.New()
	v.SetEnvPrefix("WYVERN")
	v.SetEnvKeyReplacer(strings.NewReplacer("-", "_"))
	v.AutomaticEnv()
	if err := v.BindPFlags(fs); err != nil {
		return Config{}, err
	}
	if file := v.GetString("config"); file != "" {
		v.SetConfigFile(file)
		v.SetConfigType("yaml")
		if err := v.ReadInConfig(); err != nil {
			return Config{}, fmt.Errorf("config file %s: %w", file, err)
		}
	}
	var c Config
	if err := v.UnmarshalExact(&c); err != nil {
		return Config{}, fmt.Errorf("config: %w", err)
	}
	return c, c.Validate()
}

// Validate checks every setting and says what is wrong.
func (c Config) Validate() error {
	var errs []error
	if c.NodeID == "" {
		errs = append(errs, errors.New("--node-id must not be empty"))
	}
	if _, _, err := ofctl.ParseAddr(c.OpenFlowAddr); err != nil {
		errs = append(errs, fmt.Errorf("--openflow-addr: %w", err))
	}
	if _, err := pipeline.ParseMode(c.Forwarding); err != nil {
		errs = append(errs, fmt.Errorf("--forwarding: %w", err))
	}
	if _, err := zapcore.ParseLevel(c.LogLevel); err != nil {
		errs = append(errs, fmt.Errorf("--log-level: %w", err))
	}
	return errors.Join(errs...)
}
