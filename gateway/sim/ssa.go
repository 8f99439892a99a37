package sim

type ssaState struct{}

func newSSAState() ssaState { return ssaState{} }
