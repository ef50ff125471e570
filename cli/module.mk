# The shell's grammar (cli/grammar.c) has unit tests of its own; CLI objects
# are not in a library, so the test runner links the one it needs.
$(BUILD)/tests/cli/test_grammar: $(BUILD)/tests/cli/test_grammar.o $(BUILD)/cli/grammar.o $(TEST_LIB_OBJS) $(LIBS)
	$(CC) $(LDFLAGS) -o $@ $< $(BUILD)/cli/grammar.o $(TEST_LIB_OBJS) $(LIBS) $(LDLIBS)
