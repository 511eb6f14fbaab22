package main

import (
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

// startNATS starts the embedded in-process NATS server on a random loopback port, with
// JetStream (the Bridge's dead letters are stored in a stream) in a temporary directory,
// without its own logging or signal handling (the program owns both). Stop it with
// stopNATS.
func startNATS() (*server.Server, error) {
	dir, err := os.MkdirTemp("", "mudsim-nats-")
	if err != nil {
		return nil, fmt.Errorf("mudsim: embedded nats store: %w", err)
	}
	srv, err := server.NewServer(&server.Options{
		ServerName: "mudsim",
		Host:       "127.0.0.1",
		Port:       server.RANDOM_PORT,
		NoLog:      true,
		NoSigs:     true,
		JetStream:  true,
		StoreDir:   dir,
	})
	if err != nil {
		_ = os.RemoveAll(dir)
		return nil, fmt.Errorf("mudsim: embedded nats: %w", err)
	}
	srv.Start()
	if !srv.ReadyForConnections(10 * time.Second) {
		stopNATS(srv)
		return nil, errors.New("mudsim: embedded nats not ready within 10s")
	}
	return srv, nil
}

// stopNATS shuts the server down, waits until every goroutine of it has returned and
// removes its store directory.
func stopNATS(srv *server.Server) {
	dir := srv.StoreDir()
	srv.Shutdown()
	srv.WaitForShutdown()
	if dir != "" {
		_ = os.RemoveAll(dir) //nolint:gosec // the temporary directory startNATS made
	}
}
