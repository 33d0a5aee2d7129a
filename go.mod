module github.com/wyvern-sdn/wyvern

go 1.26
