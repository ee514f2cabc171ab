"""The app floor: what turns the library into a tool (config, runner, guard, CLI, demo, verify).

May import every floor below it and the simulator; nothing below imports it.
"""
