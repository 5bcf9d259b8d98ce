package volumes

import (
	"errors"
	"reflect"
	"testing"
)

func TestPlacement(t *testing.T) {
	pool := func(free int64) *PoolInfo { return &PoolInfo{Free: free} }
	nodes := []NodeInfo{
		{Name: "a1", Zone: "a", Up: true, Pool: pool(500)},
		{Name: "a2", Zone: "a", Up: true, Pool: pool(900)},
		{Name: "b1", Zone: "b", Up: true, Pool: pool(700)},
		{Name: "c1", Zone: "c", Up: false, Pool: pool(999)},
		{Name: "c2", Zone: "c", Up: true, Pool: pool(100)},
		{Name: "d1", Zone: "d", Up: true}, // no volume pool
	}
	cases := []struct {
		name string
		req  CreateRequest
		want []string
		err  error
	}{
		{"one replica: most free", CreateRequest{Size: 10, Replicas: 1}, []string{"a2"}, nil},
		{"distinct zones, most free first", CreateRequest{Size: 10, Replicas: 2}, []string{"a2", "b1"}, nil},
		{"down nodes are skipped", CreateRequest{Size: 10, Replicas: 3}, []string{"a2", "b1", "c2"}, nil},
		{"not enough zones", CreateRequest{Size: 10, Replicas: 4}, nil, ErrPlacement},
		{"explicit nodes", CreateRequest{Size: 10, Replicas: 2, Nodes: []string{"a1", "a2"}}, []string{"a1", "a2"}, nil},
		{"explicit down node", CreateRequest{Size: 10, Replicas: 1, Nodes: []string{"c1"}}, nil, ErrPlacement},
		{"explicit node without a pool", CreateRequest{Size: 10, Replicas: 1, Nodes: []string{"d1"}}, nil, ErrPlacement},
		{"explicit unknown node", CreateRequest{Size: 10, Replicas: 1, Nodes: []string{"zz"}}, nil, ErrPlacement},
		{"a node named twice", CreateRequest{Size: 10, Replicas: 2, Nodes: []string{"a1", "a1"}}, nil, ErrInvalid},
		{"nodes too full for the size", CreateRequest{Size: 64 * 800, Replicas: 1}, []string{"a2"}, nil},
		{"no node has room", CreateRequest{Size: 64 * 1000, Replicas: 1}, nil, ErrPlacement},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := pickNodes(nodes, c.req)
			if !errors.Is(err, c.err) || !reflect.DeepEqual(got, c.want) {
				t.Fatalf("got %v, %v; want %v, %v", got, err, c.want, c.err)
			}
		})
	}
}

func TestValidName(t *testing.T) {
	for name, ok := range map[string]bool{"pg": true, "db-1.data_x": true, "": false, "-x": false, ".x": false, "Upper": false, "a/b": false, "a b": false,
		"x23456789012345678901234567890123456789012345678901234567890123": true, "x234567890123456789012345678901234567890123456789012345678901234": false} {
		if ValidName(name) != ok {
			t.Errorf("ValidName(%q) = %v", name, !ok)
		}
	}
}

func TestTieBreakerPlacement(t *testing.T) {
	pool := &PoolInfo{Free: 1}
	nodes := []NodeInfo{
		{Name: "a1", Zone: "a", Up: true, Pool: pool},
		{Name: "a2", Zone: "a", Up: true, Pool: pool},
		{Name: "b1", Zone: "b", Up: true, Pool: pool},
		{Name: "c1", Zone: "c", Up: false, Pool: pool},
		{Name: "c2", Zone: "c", Up: true, Pool: pool},
		{Name: "d1", Zone: "d", Up: true}, // no volume pool
	}
	cases := []struct {
		name     string
		all      []NodeInfo
		replicas []string
		want     string
	}{
		{"a third zone first", nodes, []string{"a1", "b1"}, "c2"},
		{"else another node", nodes[:3], []string{"a1", "b1"}, "a2"},
		{"a down node is skipped", nodes[:4], []string{"a1", "b1"}, "a2"},
		{"a node without a pool is skipped", []NodeInfo{nodes[0], nodes[2], nodes[5]}, []string{"a1", "b1"}, ""},
		{"only the two replicas' nodes", nodes[:2], []string{"a1", "a2"}, ""},
		{"one replica needs none", nodes, []string{"a1"}, ""},
		{"three replicas need none", nodes, []string{"a1", "b1", "c2"}, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := pickTieBreaker(c.all, c.replicas); got != c.want {
				t.Fatalf("got %q, want %q", got, c.want)
			}
		})
	}
}

func TestLayoutWarnings(t *testing.T) {
	if w := layoutWarnings(Record{Nodes: []string{"a", "b"}}); len(w) != 1 {
		t.Fatalf("2 replicas, no tie-breaker: %v", w)
	}
	if w := layoutWarnings(Record{Nodes: []string{"a", "b"}, TieBreaker: "c"}); len(w) != 0 {
		t.Fatalf("2 replicas and a tie-breaker: %v", w)
	}
	if w := layoutWarnings(Record{Nodes: []string{"a", "b", "c"}}); len(w) != 0 {
		t.Fatalf("3 replicas: %v", w)
	}
}
