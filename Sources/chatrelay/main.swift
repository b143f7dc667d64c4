print("chatrelay")
