module example.com/policies/go-message

go 1.26
