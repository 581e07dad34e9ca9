module chand/bench

go 1.19
