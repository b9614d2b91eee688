package graph

// UseExtension is use, for graph_test.
var UseExtension = use
