package main

import (
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

// startNATS starts the embedded in-process NATS server on a random loopback port, without
// its own logging or signal handling (the program owns both). Stop it with stopNATS.
func startNATS() (*server.Server, error) {
	srv, err := server.NewServer(&server.Options{
		ServerName: "mudsim",
		Host:       "127.0.0.1",
		Port:       server.RANDOM_PORT,
		NoLog:      true,
		NoSigs:     true,
	})
	if err != nil {
		return nil, fmt.Errorf("mudsim: embedded nats: %w", err)
	}
	srv.Start()
	if !srv.ReadyForConnections(10 * time.Second) {
		stopNATS(srv)
		return nil, errors.New("mudsim: embedded nats not ready within 10s")
	}
	return srv, nil
}

// stopNATS shuts the server down and waits until every goroutine of it has returned.
func stopNATS(srv *server.Server) {
	srv.Shutdown()
	srv.WaitForShutdown()
}
