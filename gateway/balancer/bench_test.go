package balancer

import (
	"fmt"
	"testing"
)

func benchTargets(n int) []Target {
	ts := make([]Target, n)
	for i := range ts {
		ts[i] = tg(fmt.Sprintf("10.0.%d.%d", i/256, i%256), 8000, 100+i%3*50)
	}
	return ts
}

// BenchmarkPick measures one Pick (and Done) per algorithm and Upstream size,
// serially and from all Ps at once (the round-robin and least-connections
// mutex is the contended part).
func BenchmarkPick(b *testing.B) {
	keys := make([]string, 1024)
	for i := range keys {
		keys[i] = fmt.Sprintf("192.168.%d.%d", i/256, i%256)
	}
	for _, alg := range algorithms {
		for _, n := range []int{3, 50} {
			bal, err := New(Config{Algorithm: alg}, benchTargets(n))
			if err != nil {
				b.Fatal(err)
			}
			b.Run(fmt.Sprintf("%s/targets=%d", alg, n), func(b *testing.B) {
				b.ReportAllocs()
				i := 0
				for b.Loop() {
					p, err := bal.Pick(keys[i&1023], nil)
					if err != nil {
						b.Fatal(err)
					}
					p.Done()
					i++
				}
			})
			b.Run(fmt.Sprintf("%s/targets=%d/parallel", alg, n), func(b *testing.B) {
				b.ReportAllocs()
				b.RunParallel(func(pb *testing.PB) {
					i := 0
					for pb.Next() {
						p, err := bal.Pick(keys[i&1023], nil)
						if err != nil {
							b.Error(err)
							return
						}
						p.Done()
						i++
					}
				})
			})
		}
	}
}

// BenchmarkPickRetry measures a first try and one retry with retry state.
func BenchmarkPickRetry(b *testing.B) {
	for _, alg := range algorithms {
		bal, err := New(Config{Algorithm: alg}, benchTargets(10))
		if err != nil {
			b.Fatal(err)
		}
		b.Run(alg, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				var tries Tries
				for range 2 {
					p, err := bal.Pick("10.1.2.3", &tries)
					if err != nil {
						b.Fatal(err)
					}
					p.Done()
				}
			}
		})
	}
}

// BenchmarkNew measures building a Balancer, done once per Upstream per
// snapshot compile (the continuum dominates).
func BenchmarkNew(b *testing.B) {
	for _, alg := range algorithms {
		b.Run(alg, func(b *testing.B) {
			b.ReportAllocs()
			ts := benchTargets(50)
			for b.Loop() {
				if _, err := New(Config{Algorithm: alg}, ts); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
