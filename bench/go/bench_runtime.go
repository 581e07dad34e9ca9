// bench_runtime.go - the runtime benchmarks of bench_runtime.c, in Go, for
// the side-by-side table of bench/runtime.sh.  Same workloads, same output:
// one line "<name> <value> <unit>".
//
// Copyright (c) 2026 The chand authors.  MIT License (see LICENSE).
package main

import (
	"fmt"
	"os"
	"strconv"
	"sync"
	"syscall"
	"time"
)

var n int

func pingpong() {
	ping, pong := make(chan int), make(chan int)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		for i := 0; i < n; i++ {
			v := <-ping
			pong <- v
		}
		wg.Done()
	}()
	t0 := time.Now()
	for i := 0; i < n; i++ {
		ping <- i
		<-pong
	}
	t := time.Since(t0)
	wg.Wait()
	fmt.Printf("pingpong %.1f ns/handoff\n", float64(t.Nanoseconds())/(2*float64(n)))
}

func producer(c chan int, k int) {
	for i := 0; i < k; i++ {
		c <- i
	}
}

func buffered() {
	c := make(chan int, 1024)
	t0 := time.Now()
	go producer(c, n)
	for i := 0; i < n; i++ {
		<-c
	}
	t := time.Since(t0)
	fmt.Printf("buffered %.1f ns/value\n", float64(t.Nanoseconds())/float64(n))
}

// selectN selects over k channels of capacity capacity, each fed by its
// own producer.  Go's select takes its cases as syntax, so k is 2 or 4.
func selectN(k, capacity int) {
	ch := make([]chan int, 4)
	for i := range ch {
		ch[i] = make(chan int, capacity)
	}
	t0 := time.Now()
	for i := 0; i < k; i++ {
		go producer(ch[i], n/k)
	}
	total := n / k * k
	if k == 2 {
		for i := 0; i < total; i++ {
			select {
			case <-ch[0]:
			case <-ch[1]:
			}
		}
	} else {
		for i := 0; i < total; i++ {
			select {
			case <-ch[0]:
			case <-ch[1]:
			case <-ch[2]:
			case <-ch[3]:
			}
		}
	}
	t := time.Since(t0)
	suffix := ""
	if capacity == 0 {
		suffix = "u"
	}
	fmt.Printf("select%d%s %.1f ns/select\n", k, suffix, float64(t.Nanoseconds())/float64(total))
}

func spawn() {
	var wg sync.WaitGroup
	t0 := time.Now()
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() { wg.Done() }()
	}
	wg.Wait()
	t := time.Since(t0)
	fmt.Printf("spawn %.1f ns\n", float64(t.Nanoseconds())/float64(n))
}

func whisper(left, right chan int) {
	left <- 1 + <-right
}

func daisy() {
	t0 := time.Now()
	leftmost := make(chan int)
	right := leftmost
	left := leftmost
	for i := 0; i < n; i++ {
		right = make(chan int)
		go whisper(left, right)
		left = right
	}
	go func(c chan int) { c <- 1 }(right)
	v := <-leftmost
	t := time.Since(t0)
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	fmt.Printf("daisy %d %.3f s %.1f MB\n", v, t.Seconds(), float64(ru.Maxrss)/1024)
}

func gen(k int) chan int {
	c := make(chan int)
	go func() {
		for i := 0; i < k; i++ {
			c <- i
		}
		close(c)
	}()
	return c
}

func fanin() {
	t0 := time.Now()
	in := []chan int{gen(n / 4), gen(n / 4), gen(n / 4), gen(n / 4)}
	out := make(chan int)
	var wg sync.WaitGroup
	for _, c := range in {
		wg.Add(1)
		go func(c chan int) {
			for v := range c {
				out <- v
			}
			wg.Done()
		}(c)
	}
	go func() { wg.Wait(); close(out) }()
	count := 0
	for range out {
		count++
	}
	t := time.Since(t0)
	fmt.Printf("fanin %.1f ns/value\n", float64(t.Nanoseconds())/float64(count))
}

func main() {
	if len(os.Args) != 3 {
		fmt.Fprintln(os.Stderr, "usage: bench_runtime pingpong|buffered|select2|select4|select2u|select4u|spawn|daisy|fanin N")
		os.Exit(2)
	}
	n, _ = strconv.Atoi(os.Args[2])
	switch os.Args[1] {
	case "pingpong":
		pingpong()
	case "buffered":
		buffered()
	case "select2":
		selectN(2, 1024)
	case "select4":
		selectN(4, 1024)
	case "select2u":
		selectN(2, 0)
	case "select4u":
		selectN(4, 0)
	case "spawn":
		spawn()
	case "daisy":
		daisy()
	case "fanin":
		fanin()
	default:
		fmt.Fprintln(os.Stderr, "unknown benchmark", os.Args[1])
		os.Exit(2)
	}
}
